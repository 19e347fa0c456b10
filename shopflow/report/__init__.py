"""The nightly's static HTML report: ``$SHOPFLOW_HOME/reports/<date>/index.html``.

Written by the nightly after publishing (step ``write_report``) and by ``shopflow report
--date D``; served by the on-call app at ``/shopflow-oncall/reports/<date>/`` and linked from
the DAG run. One self-contained page: plotly.js is inlined once, so it opens without network.

Sections: forecast fan charts (p10–p90 band and mean, tonight's and an earlier forecast) with
actuals for the top products; live accuracy over time of the models and their baselines;
recommendation outcomes by reason; the night's data-quality summary; the registry timeline.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from pathlib import Path

import pandas as pd
import plotly.io as pio

from shopflow.report import charts, data


def report_path(settings, run_date: dt.date) -> Path:
    """Where the report of ``run_date`` is written."""
    return Path(settings.reports_dir) / run_date.isoformat() / "index.html"


class _Page:
    """Sections of HTML; plotly.js goes with the first chart only."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.charts = 0

    def heading(self, text: str, note: str = "") -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")
        if note:
            self.parts.append(f"<p class='note'>{html.escape(note)}</p>")

    def chart(self, figure) -> None:
        self.parts.append(
            "<div class='chart'>"
            + pio.to_html(figure, full_html=False, include_plotlyjs=self.charts == 0)
            + "</div>"
        )
        self.charts += 1

    def table(self, frame: pd.DataFrame, empty: str) -> None:
        if frame.empty:
            self.parts.append(f"<p class='empty'>{html.escape(empty)}</p>")
        else:
            self.parts.append(frame.to_html(index=False, border=0, classes="table", na_rep=""))

    def empty(self, text: str) -> None:
        self.parts.append(f"<p class='empty'>{html.escape(text)}</p>")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; }
.note, .empty { color: #666; } .chart { margin: 8px 0 16px; }
table.table { border-collapse: collapse; font-size: 13px; }
table.table th, table.table td { padding: 4px 8px; border-bottom: 1px solid #eee; }
"""


def render(settings, run_date: dt.date) -> tuple[str, int]:
    """The report's HTML and its number of charts."""
    page = _Page()
    fans = data.fan_chart_data(settings, run_date)
    page.heading(
        "Forecasts of the top products",
        "Units sold per day (black) with tonight's forecast and one from about two weeks "
        "earlier: p10–p90 band and mean. Top = most units sold in the 28 days up to the date.",
    )
    if fans["forecasts"].empty:
        page.empty("No forecasts yet.")
    for product in fans["top"].get("product_id", []):
        page.chart(
            charts.fan_chart(
                product,
                fans["actuals"][fans["actuals"]["product_id"] == product],
                fans["forecasts"][fans["forecasts"]["product_id"] == product],
            )
        )

    live = data.live_accuracy(settings, run_date)
    page.heading(
        "Live accuracy",
        "What was published, scored once the actuals arrived, next to the baselines recorded "
        "the same nights (exports.forecast_accuracy, exports.recommendation_outcomes).",
    )
    if live["forecast"].empty:
        page.empty("No forecast is observable yet (the first horizon week ends 7 days after it).")
    else:
        page.chart(
            charts.lines_by_model(
                live["forecast"],
                "Weekly WAPE, horizon days 1–7, every product (lower is better)",
                "weekly WAPE",
            )
        )
    if live["ranking"].empty:
        page.empty("No recommendation list is observable yet (its window must be complete).")
    else:
        page.chart(
            charts.lines_by_model(
                live["ranking"],
                "NDCG@K of the lists on the window's purchases (higher is better)",
                "NDCG@K",
            )
        )
    page.heading("Recommendation outcomes by reason")
    if live["by_reason"].empty:
        page.empty("No recommendation list is observable yet.")
    else:
        page.chart(charts.reasons_chart(live["by_reason"]))

    page.heading("Data quality of the night")
    page.table(data.quality_summary(settings, run_date), "No quality report for this date.")

    events = data.registry_timeline(settings)
    page.heading("Model registry timeline", "Promotions, rollbacks and restorations, and why.")
    if events.empty:
        page.empty("No registry events yet.")
    else:
        page.chart(charts.timeline_chart(events))
        page.table(events.iloc[::-1], "")

    body = "\n".join(page.parts)
    title = f"Shopflow nightly report {run_date.isoformat()}"
    document = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{STYLE}</style></head><body>"
        f"<h1>{title}</h1><p class='note'>Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC "
        f"from {html.escape(str(settings.home))}.</p>{body}</body></html>\n"
    )
    return document, page.charts


def write_report(settings, run_date: dt.date) -> dict:
    """Write (or replace) the report of ``run_date``; returns its path and number of charts."""
    document, count = render(settings, run_date)
    target = report_path(settings, run_date)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(document, encoding="utf-8")
    os.replace(tmp, target)
    pruned = prune_reports(settings)
    return {"path": str(target), "charts": count, "pruned": pruned}


def prune_reports(settings) -> list[str]:
    """Remove the reports of all but the latest ``settings.reports_kept`` run dates (each
    inlines plotly.js, about 5 MB); ``shopflow report --date D`` writes one again."""
    import shutil

    root = Path(settings.reports_dir)
    dated = []
    for folder in root.iterdir() if root.is_dir() else ():
        try:
            dated.append((dt.date.fromisoformat(folder.name), folder))
        except ValueError:
            continue  # not a report folder
    dated.sort()
    old = dated[: max(len(dated) - settings.reports_kept, 0)]
    for _, folder in old:
        shutil.rmtree(folder, ignore_errors=True)
    return [day.isoformat() for day, _ in old]
