"""The report's plotly figures (one function per chart; each returns a Figure)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

BAND = "rgba(31, 119, 180, 0.18)"
EARLIER_BAND = "rgba(255, 127, 14, 0.18)"


def _layout(fig: go.Figure, title: str, yaxis: str) -> go.Figure:
    fig.update_layout(
        title=title,
        yaxis_title=yaxis,
        height=340,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.2},
        template="plotly_white",
    )
    return fig


def fan_chart(product_id: str, actuals: pd.DataFrame, forecasts: pd.DataFrame) -> go.Figure:
    """Daily units sold, and each forecast's p10–p90 band with its mean."""
    fig = go.Figure()
    for (run_date, version), forecast in forecasts.groupby(["run_date", "model_version"]):
        label = f"forecast of {pd.Timestamp(run_date):%Y-%m-%d} ({version})"
        colour = BAND if run_date == forecasts["run_date"].max() else EARLIER_BAND
        x = list(forecast["forecast_date"])
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=list(forecast["units_p90"]) + list(forecast["units_p10"])[::-1],
                fill="toself",
                fillcolor=colour,
                line={"width": 0},
                name=f"{label}: p10–p90",
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(x=x, y=forecast["units_mean"], mode="lines", name=f"{label}: mean")
        )
    fig.add_trace(
        go.Scatter(
            x=actuals["demand_date"],
            y=actuals["units_sold"],
            mode="lines+markers",
            marker={"size": 4},
            line={"color": "black", "width": 1},
            name="units sold",
        )
    )
    return _layout(fig, f"Product {product_id}", "units per day")


def lines_by_model(frame: pd.DataFrame, title: str, yaxis: str) -> go.Figure:
    """One line per model_name over run_date."""
    fig = go.Figure()
    for model, rows in frame.groupby("model_name"):
        fig.add_trace(
            go.Scatter(x=rows["run_date"], y=rows["value"], mode="lines+markers", name=model)
        )
    return _layout(fig, title, yaxis)


def reasons_chart(by_reason: pd.DataFrame) -> go.Figure:
    """Item hit rate per candidate source, one bar group per list (ranker and baselines)."""
    fig = go.Figure()
    for model, rows in by_reason.groupby("model_name"):
        fig.add_trace(go.Bar(x=rows["reason"], y=rows["item_hit_rate"], name=model))
    fig.update_layout(barmode="group")
    return _layout(
        fig, "Which sources convert: share of list places bought in the window", "item hit rate"
    )


def timeline_chart(events: pd.DataFrame) -> go.Figure:
    """Registry events over time, one row per model, one marker per decision."""
    fig = go.Figure()
    for action, rows in events.groupby("action"):
        fig.add_trace(
            go.Scatter(
                x=rows["event_at"],
                y=rows["model_name"],
                mode="markers",
                marker={"size": 11},
                name=action,
                text=rows["version"] + ": " + rows["reason"].fillna("").str.slice(0, 200),
                hoverinfo="text+x",
            )
        )
    return _layout(fig, "Registry timeline", "model")
