"""Global XGBoost demand forecaster: one model over all products, horizons 1..H.

Strategy: **direct multi-horizon**. Each training row is (product, origin, horizon h) with the
product's features at the end of the origin day (``feat_product_daily``), the horizon and the
target day's calendar; the label is the units sold on origin + h. One model learns all horizons
at once, so errors do not compound as in recursive forecasting, the model sees the target
weekday directly, and scoring is a single batched predict (products x H rows).

Two boosters share the feature matrix:
- ``mean``: Tweedie objective for zero-heavy counts -> ``units_mean`` (expected units);
- ``quantiles``: XGBoost's multi-quantile objective (alpha 0.1/0.5/0.9) -> p10/p50/p90,
  repaired to be monotone (sorted per row) and non-negative. Rows whose expected rate is below
  ``count_quantile_max_rate`` (slow products, where the booster's continuous p90 sits a
  fraction of a unit under every sale) take the whole-unit quantiles of
  :func:`count_quantiles` around the mean booster's rate instead.

Why these features (what a planner knows):
- level and trend: lags, 7/28/91/182-day means, the 28-day mean *without its largest day* and
  the largest single order, so one wholesale customer's one-off order is seen as such;
- breadth: orders, customer-days and units per order (many small buyers are steadier than one
  big one), and the level of the product's family (colour/size variants share a stock-code
  stem) and category, which is what new products and slow movers borrow from;
- price: last price and its ratio to the 28- and 91-day average (a cut lifts demand);
- returns over 28 days; product age and days since the last sale (new / dormant products);
- intermittent demand (Croston/TSB): how often the product sells (share of sale days over 28
  and 91 days), how much when it does, the mean interval between sale days and a smoothed
  rate, derived by :func:`add_intermittency_features` (most slow products sell a few units a
  month, which a plain mean cannot tell from a steady trickle);
- calendar of the target day: weekday (the shop barely sells on Saturdays) and the
  Christmas shutdown;
- the season, only for a model whose training rows reach back a year or more before their
  last target day (:func:`learns_the_season`): the target's day of the year
  (``SEASON_FEATURES``). Trees on it learn how far the labels on those days of the year ran
  above the level the origin features describe, e.g. the autumn ramp into Christmas. With
  about one year of history the training set has no earlier autumn to learn a season from, so
  such a feature would only memorise last December's shutdown: that model is trained on
  ``ONE_YEAR_FEATURES``, exactly as before the season existed. With more than a year,
  :func:`training_origins` takes the origins around the same day a year earlier in turn with
  the newest ones, so the row cap cannot drop last year's same weeks. On a generated two-year
  shop (60 products; cutoffs every three weeks from 1 September, next 28 days) the autumn bias
  went from -0.19 to -0.07, weekly WAPE 0.445 -> 0.440, pinball 0.283 -> 0.281; with a row
  cap keeping about 15 origins, -0.19 -> -0.16, WAPE 0.448 -> 0.439; with one keeping 4 (as
  ``max_training_rows`` does for the 5,000 products of bench size M), -0.25 -> -0.21, WAPE
  0.478 -> 0.454. Last year's same weeks as product features (the 28 days 364 days before
  the target window and the ramp into them) were tried before: no gain on the autumn weeks
  (bias -0.14 -> -0.17) for twice the dbt cost of feat_product_daily, so they are not
  features.

Days the shop is closed: a weekday with no unit sold on any of its (at least
``closed_weekday_min_days``) target days in the training labels is learned as closed, and every
forecast for it is zero. The boosters cannot output an exact zero, so without this they spread
about one unit of p90 over each closed Saturday, which pinball loss charges (0.1 x p90 per row).
The learned weekdays are saved as ``calendar.json`` next to the boosters and applied by
``forecast`` as by ``predict_rows``.

Labels are winsorised per row at ``label_cap_factor`` x the product's recent ceiling
(max(largest day in 28, 7 x the 91-day mean, 1)), known at the origin: the model learns regular
demand, a one-off order in the target window does not teach it to expect one every week.
The cap clips about 2 % of the training units; on the two-year shop's autumn it costs some
bias (without it -0.16 -> -0.13 under the row cap) but weekly WAPE was worse (0.439 -> 0.442),
so it stays.

The point forecast is the mean booster's ``units_mean``. On the real year's development
windows (origins 2010-08-19 and 2010-09-16), where it under-forecasts (bias -0.41), a point
forecast moved towards p50 or shrunk (weekly WAPE 0.7303 -> 0.7299 a quarter of the way to
p50, 0.7471 half way; 0.7295 at 0.95 x the mean) gains at most 0.1 % for a bias further
from zero, and narrower p90s raise pinball (x0.9: 0.3718 -> 0.3745), so none is applied.

Training is deterministic: fixed seed, fixed thread count, rows in a fixed order.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

MODEL_NAME = "demand_forecast"

ORIGIN_FEATURES = [
    "units_sold",
    "lag_7",
    "lag_14",
    "lag_28",
    "mean_7",
    "mean_28",
    "mean_91",
    "std_28",
    "max_28",
    "sale_days_28",
    "returned_28",
    "product_age_days",
    "days_since_last_sale",
    "last_price",
    "price_ratio_91",
    "category_mean_28",
    "mean_182",
    "mean_28_trimmed",
    "sale_days_91",
    "orders_28",
    "customer_days_28",
    "largest_order_28",
    "units_per_order_91",
    "price_ratio_28",
    "category_trend_7_28",
    "family_mean_28_trimmed",
    "family_products",
]
# derived from the columns above by :func:`add_intermittency_features`
INTERMITTENCY_FEATURES = [
    "sale_rate_28",
    "sale_rate_91",
    "size_when_sold_91",
    "sale_interval_91",
    "smoothed_rate",
]
TARGET_FEATURES = ["horizon_days", "target_weekday", "target_is_shutdown"]
# what a model trained on more than a year of history learns the season from (see
# :func:`learns_the_season`); a model on a shorter history is trained without them
SEASON_FEATURES = ["target_day_of_year"]
ONE_YEAR_FEATURES = ORIGIN_FEATURES + INTERMITTENCY_FEATURES + TARGET_FEATURES
FEATURES = ONE_YEAR_FEATURES + SEASON_FEATURES
# every feature list a saved forecaster of this code may read (one-year and season models)
FEATURE_SETS = (ONE_YEAR_FEATURES, FEATURES)
QUANTILES = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class ForecastParams:
    horizon_days: int = 28
    origin_step_days: int = 7
    max_training_rows: int = 400_000
    active_days: int = 90
    num_boost_round: int = 150
    max_depth: int = 6
    learning_rate: float = 0.08
    tweedie_variance_power: float = 1.3
    label_cap_factor: float = 2.0
    seed: int = 7
    nthread: int = 2
    max_bin: int = 256
    closed_weekday_min_days: int = 4
    # below this expected daily rate the quantiles are those of whole-unit counts around the
    # mean booster's rate (:func:`count_quantiles`); 0 keeps the quantile booster's everywhere.
    # On the marketplace profile 0.5 lowered pinball 1.4 % and brought every tier's share
    # above p90 under 0.12; 1 and 3 helped less
    count_quantile_max_rate: float = 0.5

    def booster_params(self) -> dict:
        return {
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": 0.8,
            "colsample_bytree": 0.9,
            "min_child_weight": 5,
            "seed": self.seed,
            "nthread": self.nthread,
            # a knob for speed: fewer bins train faster, at some accuracy cost
            "max_bin": self.max_bin,
        }


def active_at_origin(feat: pd.DataFrame, active_days: int) -> pd.DataFrame:
    """Products that sold in the ``active_days`` up to the row's day (the forecast population)."""
    return feat[feat["days_since_last_sale"].notna() & (feat["days_since_last_sale"] < active_days)]


def add_intermittency_features(origin_rows: pd.DataFrame) -> pd.DataFrame:
    """Croston/TSB-style signals of intermittent demand, derived from feature columns.

    A slow product is described by how often it sells and how much when it does, which a
    plain mean mixes up: the share of days with a sale over 28 and 91 days (of the days the
    product has existed), the mean units on a sale day, the mean interval between sale days
    and a smoothed rate (the blended sale-day share times the size when sold). Computed here,
    in the frame builder that training, backtests and scoring all use, so the definitions
    cannot drift between them.
    """
    rows = origin_rows.copy()
    age = rows["product_age_days"].fillna(0).to_numpy(float) + 1.0
    days_28 = np.clip(age, 1.0, 28.0)
    days_91 = np.clip(age, 1.0, 91.0)
    sale_days_28 = rows["sale_days_28"].fillna(0).to_numpy(float)
    sale_days_91 = rows["sale_days_91"].fillna(0).to_numpy(float)
    units_91 = rows["mean_91"].fillna(0).to_numpy(float) * days_91
    with np.errstate(divide="ignore", invalid="ignore"):
        size = np.where(sale_days_91 > 0, units_91 / sale_days_91, np.nan)
        interval = np.where(sale_days_91 > 0, days_91 / sale_days_91, np.nan)
    rate_28, rate_91 = sale_days_28 / days_28, sale_days_91 / days_91
    rows["sale_rate_28"] = rate_28
    rows["sale_rate_91"] = rate_91
    rows["size_when_sold_91"] = size
    rows["sale_interval_91"] = interval
    rows["smoothed_rate"] = np.nan_to_num(0.5 * (rate_28 + rate_91) * size)
    return rows


def expand_horizons(origin_rows: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """One row per (product, origin, horizon) with the target day's calendar features."""
    origin_rows = add_intermittency_features(origin_rows)
    horizons = pd.DataFrame({"horizon_days": np.arange(1, horizon_days + 1, dtype=np.int32)})
    rows = origin_rows.merge(horizons, how="cross")
    rows["forecast_date"] = pd.to_datetime(rows["demand_date"]) + pd.to_timedelta(
        rows["horizon_days"], unit="D"
    )
    rows["target_weekday"] = rows["forecast_date"].dt.weekday
    month, day = rows["forecast_date"].dt.month, rows["forecast_date"].dt.day
    # the shop closes between Christmas and the first working days of January
    rows["target_is_shutdown"] = ((month == 12) & (day >= 24)) | ((month == 1) & (day <= 3))
    rows["target_day_of_year"] = rows["forecast_date"].dt.dayofyear
    return rows


def learns_the_season(training: pd.DataFrame) -> bool:
    """Whether the training rows reach back a year or more before their last target day.

    Only then can the season features help: the model has seen last year's labels on the
    days of the year it forecasts. With a shorter history they would only memorise one
    year's peculiarities (last December's shutdown), so such a model is trained without them.
    """
    if training.empty:
        return False
    first_origin = pd.to_datetime(training["demand_date"]).min()
    last_target = pd.to_datetime(training["forecast_date"]).max()
    return (last_target - first_origin).days >= 365


def training_origins(first_day: dt.date, cutoff: dt.date, params: ForecastParams) -> list[dt.date]:
    """Origins spaced ``origin_step_days`` apart whose horizon ends by cutoff, in the order
    :func:`build_training_frame` takes them until ``max_training_rows``.

    Newest first. When the history reaches back over a year before the cutoff, the origins
    around the same day a year earlier come in turn with the newest ones (ordered by their
    distance to the nearer of the two), so a row cap that keeps only a few weeks of origins
    still holds last year's same weeks, the only rows the season can be learnt from.
    """
    last_origin = cutoff - dt.timedelta(days=params.horizon_days)
    origins = []
    day = last_origin
    while day >= first_day + dt.timedelta(days=28):
        origins.append(day)
        day -= dt.timedelta(days=params.origin_step_days)
    year_ago = cutoff - dt.timedelta(days=364)
    if origins and origins[-1] <= year_ago - dt.timedelta(days=params.horizon_days):

        def distance(origin: dt.date) -> int:
            return min((last_origin - origin).days, abs((year_ago - origin).days))

        origins = sorted(origins, key=distance)  # stable: newest first among equals
    return origins


def build_training_frame(
    feat: pd.DataFrame, cutoff: dt.date, params: ForecastParams
) -> pd.DataFrame:
    """Training rows from features at past origins, labels from days up to ``cutoff`` only."""
    feat = feat[pd.to_datetime(feat["demand_date"]) <= pd.Timestamp(cutoff)]
    if feat.empty:
        return pd.DataFrame(columns=[*FEATURES, "y", "product_id"])
    first_day = pd.to_datetime(feat["demand_date"]).min().date()
    origins = training_origins(first_day, cutoff, params)
    actuals = feat[["product_id", "demand_date", "units_sold"]].rename(
        columns={"demand_date": "forecast_date", "units_sold": "y"}
    )
    actuals["forecast_date"] = pd.to_datetime(actuals["forecast_date"])
    frames, rows = [], 0
    for origin in origins:
        origin_rows = active_at_origin(
            feat[pd.to_datetime(feat["demand_date"]) == pd.Timestamp(origin)], params.active_days
        )
        if origin_rows.empty:
            continue
        expanded = expand_horizons(origin_rows, params.horizon_days)
        # products whose history ends before the target day count as zero sales
        expanded = expanded.merge(actuals, on=["product_id", "forecast_date"], how="left")
        expanded["y"] = expanded["y"].fillna(0.0)
        frames.append(expanded)
        rows += len(expanded)
        if rows >= params.max_training_rows:
            break
    if not frames:
        return pd.DataFrame(columns=[*FEATURES, "y", "product_id"])
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["demand_date", "product_id", "horizon_days"], ignore_index=True)


def capped_labels(training: pd.DataFrame, factor: float) -> np.ndarray:
    """Labels clipped to [0, factor x the product's ceiling known at the origin]."""
    ceiling = np.maximum.reduce(
        [
            training["max_28"].fillna(0).to_numpy(float),
            7.0 * training["mean_91"].fillna(0).to_numpy(float),
            np.ones(len(training)),
        ]
    )
    y = training["y"].clip(lower=0).to_numpy(float)
    return np.minimum(y, factor * ceiling).astype("float32")


def count_quantiles(rate: np.ndarray, size_when_sold: np.ndarray) -> np.ndarray:
    """p10/p50/p90 of whole-unit daily demand with mean ``rate`` (rows x len(QUANTILES)).

    A slow product sells on few days, ``size_when_sold`` units at a time, so its daily units
    vary more than a Poisson count: a negative binomial with the rate as mean and the
    variance of such sale days (rate x size - rate^2) describes it; with sizes near one unit
    it is the Poisson. Its quantiles are whole numbers: p90 is 0 only while a sale day is
    rarer than one in ten, where the quantile booster's continuous p90 stays a fraction of a
    unit below every sale.
    """
    from scipy import stats  # only when scoring: keeps the module light to import

    rate = np.maximum(np.asarray(rate, dtype=float), 1e-9)
    size = np.nan_to_num(np.asarray(size_when_sold, dtype=float), nan=1.0)
    # variance = rate + rate^2 / r  =>  r = rate / (size - 1 - rate), Poisson as r grows
    excess = np.maximum(size - 1.0 - rate, 1e-6)
    shape = np.clip(rate / excess, 0.05, 1e6)
    success = shape / (shape + rate)
    return np.stack([stats.nbinom.ppf(q, shape, success) for q in QUANTILES], axis=1)


def _matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    return frame[features].astype("float32").to_numpy()


def closed_weekdays(training: pd.DataFrame, min_days: int) -> tuple[int, ...]:
    """Target weekdays on which nothing sold on any of at least ``min_days`` labelled days.

    Learned from the training labels only (every label day is on or before the cutoff); a
    weekday seen on fewer days is never called closed, so a short history cannot close a day
    that merely had a quiet week.
    """
    if training.empty:
        return ()
    days = training.groupby("target_weekday").agg(
        units=("y", "sum"), days=("forecast_date", "nunique")
    )
    closed = days[(days["units"] <= 0) & (days["days"] >= min_days)].index
    return tuple(sorted(int(w) for w in closed))


@dataclass
class DemandForecaster:
    """The trained pair of boosters plus what is needed to score with them."""

    mean_booster: xgb.Booster
    quantile_booster: xgb.Booster
    params: ForecastParams
    closed_weekdays: tuple[int, ...] = ()
    # FEATURES when trained on more than a year (:func:`learns_the_season`), else
    # ONE_YEAR_FEATURES
    features: tuple[str, ...] = tuple(ONE_YEAR_FEATURES)

    @classmethod
    def train(cls, training: pd.DataFrame, params: ForecastParams) -> DemandForecaster:
        if training.empty:
            raise ValueError("no training rows: the history is shorter than one horizon")
        features = FEATURES if learns_the_season(training) else ONE_YEAR_FEATURES
        x = _matrix(training, features)
        y = capped_labels(training, params.label_cap_factor)
        base = params.booster_params()
        mean_booster = xgb.train(
            {
                **base,
                "objective": "reg:tweedie",
                "tweedie_variance_power": params.tweedie_variance_power,
            },
            xgb.DMatrix(x, label=y, feature_names=features),
            num_boost_round=params.num_boost_round,
        )
        quantile_booster = xgb.train(
            {
                **base,
                "objective": "reg:quantileerror",
                "quantile_alpha": np.array(QUANTILES),
            },
            xgb.QuantileDMatrix(x, label=y, feature_names=features, max_bin=params.max_bin),
            num_boost_round=params.num_boost_round,
        )
        closed = closed_weekdays(training, params.closed_weekday_min_days)
        return cls(mean_booster, quantile_booster, params, closed, tuple(features))

    def predict_rows(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Predict for expanded rows; returns units_mean and monotone, non-negative quantiles."""
        features = list(self.features)
        matrix = xgb.DMatrix(_matrix(rows, features), feature_names=features)
        mean = np.clip(self.mean_booster.predict(matrix), 0.0, None)
        quantiles = np.asarray(self.quantile_booster.predict(matrix)).reshape(len(rows), -1)
        quantiles = np.sort(np.clip(quantiles, 0.0, None), axis=1)
        slow = mean < self.params.count_quantile_max_rate
        if slow.any():
            quantiles[slow] = count_quantiles(
                mean[slow], rows["size_when_sold_91"].to_numpy(float)[slow]
            )
        closed = rows["target_weekday"].isin(self.closed_weekdays).to_numpy()
        mean[closed] = 0.0
        quantiles[closed] = 0.0
        out = rows[["product_id", "demand_date", "forecast_date", "horizon_days"]].copy()
        out["units_mean"] = mean.astype("float64")
        out["units_p10"] = quantiles[:, 0].astype("float64")
        out["units_p50"] = quantiles[:, 1].astype("float64")
        out["units_p90"] = quantiles[:, 2].astype("float64")
        return out

    def forecast(self, feat: pd.DataFrame, origin: dt.date) -> pd.DataFrame:
        """Forecast every product active at ``origin`` for horizons 1..H."""
        origin_rows = active_at_origin(
            feat[pd.to_datetime(feat["demand_date"]) == pd.Timestamp(origin)],
            self.params.active_days,
        )
        if origin_rows.empty:
            return pd.DataFrame(
                columns=[
                    "product_id",
                    "forecast_date",
                    "horizon_days",
                    "units_mean",
                    "units_p10",
                    "units_p50",
                    "units_p90",
                ]
            )
        rows = expand_horizons(origin_rows, self.params.horizon_days)
        predicted = self.predict_rows(rows)
        predicted["forecast_date"] = predicted["forecast_date"].dt.date
        return predicted.drop(columns=["demand_date"]).reset_index(drop=True)

    # -- persistence: XGBoost's own UBJSON format, never pickle ---------------------------
    def save(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "mean.ubj", folder / "quantiles.ubj"]
        self.mean_booster.save_model(paths[0])
        self.quantile_booster.save_model(paths[1])
        (folder / "params.json").write_text(json.dumps(self.params.__dict__, sort_keys=True))
        calendar = {"closed_weekdays": list(self.closed_weekdays)}
        (folder / "calendar.json").write_text(json.dumps(calendar, sort_keys=True))
        return [*paths, folder / "params.json", folder / "calendar.json"]

    @classmethod
    def load(cls, folder: Path) -> DemandForecaster:
        params = ForecastParams(**json.loads((folder / "params.json").read_text()))
        mean_booster = xgb.Booster()
        mean_booster.load_model(folder / "mean.ubj")
        quantile_booster = xgb.Booster()
        quantile_booster.load_model(folder / "quantiles.ubj")
        features = list(mean_booster.feature_names or [])
        for booster in (mean_booster, quantile_booster):
            names = list(booster.feature_names or [])
            if names not in FEATURE_SETS or names != features:
                raise ValueError(
                    f"model in {folder} expects features {booster.feature_names}, "
                    f"this code provides {ONE_YEAR_FEATURES} or, with the season, {FEATURES}"
                )
        # models saved before the calendar existed know no closed weekday
        calendar_path = folder / "calendar.json"
        calendar = json.loads(calendar_path.read_text()) if calendar_path.exists() else {}
        closed = tuple(int(w) for w in calendar.get("closed_weekdays", []))
        return cls(mean_booster, quantile_booster, params, closed, tuple(features))
