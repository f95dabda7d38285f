"""Demand forecasting: daily orders and units per category and per shop, with prophet.

- Weekly seasonality: estimated once by prophet on the platform's total (where a week holds enough
  orders to show it) and shared by every series as a multiplier; a single category or shop sells too
  few a day to place its own weekly pattern without mostly fitting noise.
- Each series: prophet (MAP optimisation only, never MCMC) on the series with the weekly rhythm
  divided out: its level (a trend optionally, see `ForecastConfig.growth`) and the promotions as a
  multiplicative regressor; the rhythm is multiplied back. Series run in parallel worker processes,
  each fit bounded in time by cmdstan's timeout and the pool's deadline.
- Fallback, for series too short or too sparse for prophet and for any fit that fails or times out:
  the last four weeks' level times the weekly rhythm, with Poisson intervals.
- Backtest: the last `backtest_days` held out, against the seasonal-naive baseline (the last observed
  week repeated). Scored on count forecasts (see `count_point`), sMAPE and MAE.
- Restock suggestions turn the category forecasts into per-product demand over a lead time and
  compare it with the stock.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import poisson

from ml.checks import require_columns

log = logging.getLogger(__name__)
METRICS = ("orders", "units")
KINDS = ("category", "shop")


class InsufficientHistory(ValueError):
    """Too few days of orders to backtest a forecast (a fresh platform): nothing to fit yet."""


@dataclass(frozen=True)
class ForecastConfig:
    horizon_days: int = 30
    backtest_days: int = 14
    # Prophet needs a few weeks to place weekly seasonality and a trend; shorter series get the fallback.
    min_history_days: int = 28
    # Intermittent series (mostly zero days) are where prophet's Gaussian noise fits worst.
    min_daily_mean: float = 0.5
    interval_width: float = 0.8
    workers: int = 2
    series_timeout_seconds: float = 30.0
    uncertainty_samples: int = 200
    # "flat": level, weekly rhythm and promotions. On a few weeks of noisy daily counts an extrapolated
    # trend cost more than it gained in every backtest on the simulator's data (4 to 20 sMAPE points
    # on category series); "linear" fits one, with a few stiff changepoints.
    growth: Literal["flat", "linear"] = "flat"
    n_changepoints: int = 3
    changepoint_prior_scale: float = 0.01


@dataclass
class ForecastResult:
    """`forecasts`: series, kind, key, metric, ds, yhat, yhat_lower, yhat_upper, method (one row per
    series, metric and future day). `backtest`: series, kind, key, metric, ds, y, yhat (mean), point
    (the count forecast scored: see `count_point`), naive (held-out days).
    `metrics`: one row per series and metric with method, smape, smape_naive, mae, mae_naive,
    seconds, error. `summary`: the figures over all series."""

    forecasts: pd.DataFrame
    backtest: pd.DataFrame
    metrics: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


# --- input ---------------------------------------------------------------------------------------
def daily_demand(lines: pd.DataFrame, *, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Daily orders and units per category and per shop.

    `lines`: one row per order line, orders placed (e.g. fct_orders x order items):
    order_id int, created_at datetime64[UTC], shop_id int, category_id int (nullable), quantity int,
    status str (cancelled orders are dropped: their stock comes back).

    Returns one row per series and UTC day, from the first day any order was placed to `end` (default:
    the last such day), zero-filled: series ("category:3", "shop:7"), kind, key int, ds (naive date at
    midnight, as prophet wants), orders, units.
    """
    require_columns(
        lines, ("order_id", "created_at", "shop_id", "category_id", "quantity", "status"), "lines"
    )
    live = lines[lines["status"].astype(str) != "cancelled"].copy()
    live["ds"] = _day(live["created_at"])
    first = live["ds"].min() if len(live) else _day(pd.Series([pd.Timestamp.now(tz="UTC")])).iloc[0]
    last = live["ds"].max() if end is None else _day(pd.Series([pd.Timestamp(end)])).iloc[0]
    days = pd.date_range(first, last, freq="D")
    frames = []
    for kind in KINDS:
        col = f"{kind}_id"
        part = live.dropna(subset=[col])
        grouped = part.groupby([col, "ds"]).agg(orders=("order_id", "nunique"), units=("quantity", "sum"))
        keys = sorted(int(k) for k in part[col].unique())
        full = pd.MultiIndex.from_product([keys, days], names=[col, "ds"])
        g = grouped.reindex(full, fill_value=0).reset_index().rename(columns={col: "key"})
        g["kind"] = kind
        g["series"] = kind + ":" + g["key"].astype(int).astype(str)
        frames.append(g)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    cols = ["series", "kind", "key", "ds", "orders", "units"]
    if out.empty:
        return pd.DataFrame(columns=cols)
    out["key"] = out["key"].astype("int64")
    out[["orders", "units"]] = out[["orders", "units"]].astype("int64")
    return out[cols]


def promotion_regressor(
    lines: pd.DataFrame, promotions: pd.DataFrame | None, days: pd.DatetimeIndex
) -> pd.DataFrame:
    """How much of each series is on promotion each day, in [0, 1].

    `promotions`: one row per planned promotion: category_id int, start, end (dates, inclusive). A
    category series is 1 on its promotion days; a shop series gets the share of its units sold in the
    promoted category (its category mix over all of `lines`), so one regressor serves both kinds.
    Returns series, ds, promo for every series in `lines` and every day in `days`.
    """
    live = lines[lines["status"].astype(str) != "cancelled"]
    cats = sorted(int(c) for c in live["category_id"].dropna().unique())
    on = pd.DataFrame(0.0, index=days, columns=cats)
    if promotions is not None and len(promotions):
        require_columns(promotions, ("category_id", "start", "end"), "promotions")
        for p in promotions.itertuples(index=False):
            if int(p.category_id) in on.columns:
                start = _naive_day(p.start)
                stop = _naive_day(p.end)
                on.loc[(on.index >= start) & (on.index <= stop), int(p.category_id)] = 1.0
    frames = []
    for c in cats:
        frames.append(pd.DataFrame({"series": f"category:{c}", "ds": days, "promo": on[c].to_numpy()}))
    mix = live.dropna(subset=["category_id"]).groupby(["shop_id", "category_id"])["quantity"].sum()
    for shop, shares in mix.groupby(level=0):
        weights = shares.droplevel(0) / shares.sum()
        value = on[[int(c) for c in weights.index]].to_numpy() @ weights.to_numpy(dtype=float)
        frames.append(pd.DataFrame({"series": f"shop:{int(shop)}", "ds": days, "promo": value}))
    if not frames:
        return pd.DataFrame(columns=["series", "ds", "promo"])
    return pd.concat(frames, ignore_index=True)


# --- metrics -------------------------------------------------------------------------------------
def smape(actual: Iterable[float], predicted: Iterable[float]) -> float:
    """Symmetric MAPE in percent (0..200); a day where both are zero counts as a perfect 0."""
    a = np.asarray(list(actual), dtype=float)
    p = np.asarray(list(predicted), dtype=float)
    denom = np.abs(a) + np.abs(p)
    terms = np.where(denom == 0, 0.0, 2.0 * np.abs(a - p) / np.where(denom == 0, 1.0, denom))
    return float(100.0 * terms.mean()) if len(terms) else float("nan")


def mae(actual: Iterable[float], predicted: Iterable[float]) -> float:
    a = np.asarray(list(actual), dtype=float)
    p = np.asarray(list(predicted), dtype=float)
    return float(np.abs(a - p).mean()) if len(a) else float("nan")


def seasonal_naive(history: np.ndarray, horizon: int, season: int = 7) -> np.ndarray:
    """The baseline: the last observed week repeated (the mean when there is less than a week)."""
    if len(history) >= season:
        return np.tile(history[-season:], math.ceil(horizon / season))[:horizon].astype(float)
    return np.full(horizon, float(np.mean(history)) if len(history) else 0.0)


def count_point(mean: np.ndarray) -> np.ndarray:
    """The point forecast of a day's count: the median of a Poisson with the forecast mean. A day
    never sells 0.3 orders, and the median is the forecast that minimises the absolute error."""
    return np.asarray(poisson.median(np.clip(mean, 0.0, None)), dtype=float)


def weekly_index(ds: np.ndarray, y: np.ndarray, until: int, config: ForecastConfig) -> np.ndarray:
    """The platform's weekly rhythm as a multiplier per day of `ds` (history and horizon), estimated
    by prophet on `y[:until]` (the platform total): every series shares it, because one category or
    shop holds too few orders a day to place its own weekly pattern."""
    if until < 14 or float(np.sum(y[:until])) <= 0:
        return np.ones(len(ds))
    _quiet()
    from prophet import Prophet  # heavy import: only where fitting happens

    model = Prophet(
        growth="linear",
        yearly_seasonality=False,
        weekly_seasonality=True,
        daily_seasonality=False,
        seasonality_mode="multiplicative",
        uncertainty_samples=0,
        mcmc_samples=0,
    )
    try:
        model.fit(
            pd.DataFrame({"ds": pd.to_datetime(ds[:until]), "y": y[:until]}),
            timeout=config.series_timeout_seconds,
        )
        weekly = model.predict(pd.DataFrame({"ds": pd.to_datetime(ds)}))["weekly"].to_numpy(dtype=float)
    except Exception:  # no rhythm rather than no forecast: each series still gets its level
        log.warning("weekly rhythm fit failed; series are forecast without it", exc_info=True)
        return np.ones(len(ds))
    index: np.ndarray = np.clip(1.0 + weekly, 0.05, None)
    return index


# --- one series (runs in a worker process) ---------------------------------------------------------
@dataclass(frozen=True)
class _Task:
    series: str
    metric: str
    ds: np.ndarray  # history days (naive midnights)
    y: np.ndarray
    promo: np.ndarray  # history then horizon
    week_backtest: np.ndarray  # weekly multiplier estimated without the held-out days: history + horizon
    week: np.ndarray  # weekly multiplier estimated on all history: history + horizon
    config: ForecastConfig


@dataclass
class _Outcome:
    series: str
    metric: str
    method: str
    backtest_yhat: np.ndarray
    backtest_naive: np.ndarray
    yhat: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    seconds: float
    error: str = ""


def _quiet() -> None:
    """cmdstanpy installs an INFO handler on first use unless its logger has one: give it a silent one."""
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
        logger.setLevel(logging.WARNING)


def _prophet(
    ds: np.ndarray,
    y: np.ndarray,
    promo: np.ndarray,
    week: np.ndarray,
    horizon: int,
    config: ForecastConfig,
    *,
    intervals: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prophet on the series with the shared weekly rhythm divided out: level (or trend, see
    `ForecastConfig.growth`) and promotions (multiplicative regressor); the rhythm is multiplied back."""
    _quiet()
    from prophet import Prophet  # heavy import: only in the processes that fit

    n = len(y)
    use_promo = bool(np.ptp(promo[:n]) > 0)
    model = Prophet(
        growth=config.growth,
        yearly_seasonality=False,
        weekly_seasonality=False,
        daily_seasonality=False,
        seasonality_mode="multiplicative",
        interval_width=config.interval_width,
        # Sampling the intervals is most of predict's time; a backtest only needs the point forecast.
        uncertainty_samples=config.uncertainty_samples if intervals else 0,
        mcmc_samples=0,
        n_changepoints=min(config.n_changepoints, max(0, n // 7 - 1)),
        changepoint_prior_scale=config.changepoint_prior_scale,
    )
    history = pd.DataFrame({"ds": pd.to_datetime(ds), "y": y.astype(float) / week[:n]})
    future = pd.DataFrame({"ds": pd.date_range(pd.Timestamp(ds[-1]) + pd.Timedelta(days=1), periods=horizon)})
    if use_promo:
        model.add_regressor("promo", mode="multiplicative")
        history["promo"] = promo[:n]
        future["promo"] = promo[n : n + horizon]
    # cmdstan's own timeout kills the optimiser if it hangs; MAP fits take well under a second.
    model.fit(history, timeout=config.series_timeout_seconds)
    fc = model.predict(future)
    w = week[n : n + horizon]
    yhat = np.clip(fc["yhat"].to_numpy(dtype=float), 0.0, None) * w  # demand is never negative
    if "yhat_lower" not in fc:
        return yhat, yhat, yhat
    lower = np.clip(fc["yhat_lower"].to_numpy(dtype=float), 0.0, None) * w
    return yhat, lower, np.clip(fc["yhat_upper"].to_numpy(dtype=float), 0.0, None) * w


def _fallback(
    y: np.ndarray, week: np.ndarray, horizon: int, config: ForecastConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cheap forecast: the last four weeks' level with the weekly rhythm divided out, times the
    rhythm; Poisson intervals (a day's count)."""
    n = len(y)
    recent = slice(max(0, n - 28), n)
    level = float(np.mean(y[recent] / week[:n][recent])) if n else 0.0
    yhat = level * week[n : n + horizon]
    tail = (1 - config.interval_width) / 2
    lower = np.asarray(poisson.ppf(tail, np.clip(yhat, 1e-9, None)), dtype=float)
    upper = np.asarray(poisson.ppf(1 - tail, np.clip(yhat, 1e-9, None)), dtype=float)
    return yhat, lower, upper


def _use_prophet(y: np.ndarray, config: ForecastConfig) -> bool:
    return len(y) >= config.min_history_days and float(np.mean(y)) >= config.min_daily_mean


def _fit_series(task: _Task) -> _Outcome:
    """Backtest on the held-out tail, then refit on everything for the horizon."""
    began = time.perf_counter()
    cfg = task.config
    n, b, h = len(task.y), cfg.backtest_days, cfg.horizon_days
    train_y, train_ds = task.y[: n - b], task.ds[: n - b]
    naive = seasonal_naive(train_y, b)
    method = "prophet" if _use_prophet(train_y, cfg) else "fallback"
    error = ""
    try:
        if method == "prophet":
            bt, _, _ = _prophet(train_ds, train_y, task.promo, task.week_backtest, b, cfg, intervals=False)
            yhat, lower, upper = _prophet(task.ds, task.y, task.promo, task.week, h, cfg)
        else:
            bt = _fallback(train_y, task.week_backtest, b, cfg)[0]
            yhat, lower, upper = _fallback(task.y, task.week, h, cfg)
    except Exception as exc:  # a failed or timed-out fit must not lose the series
        error = f"{type(exc).__name__}: {exc}"[:300]
        method = "fallback"
        bt = _fallback(train_y, task.week_backtest, b, cfg)[0]
        yhat, lower, upper = _fallback(task.y, task.week, h, cfg)
    return _Outcome(
        task.series, task.metric, method, bt, naive, yhat, lower, upper, time.perf_counter() - began, error
    )


def _timed_out(task: _Task, message: str) -> _Outcome:
    cfg = task.config
    n, b = len(task.y), cfg.backtest_days
    bt = _fallback(task.y[: n - b], task.week_backtest, b, cfg)[0]
    naive = seasonal_naive(task.y[: n - b], b)
    yhat, lower, upper = _fallback(task.y, task.week, cfg.horizon_days, cfg)
    return _Outcome(task.series, task.metric, "fallback", bt, naive, yhat, lower, upper, 0.0, message)


# --- all series --------------------------------------------------------------------------------
def forecast_demand(
    lines: pd.DataFrame,
    promotions: pd.DataFrame | None = None,
    config: ForecastConfig | None = None,
    *,
    end: pd.Timestamp | None = None,
    kinds: Iterable[str] = KINDS,
    metrics: Iterable[str] = METRICS,
) -> ForecastResult:
    """Backtests and forecasts every category and shop series in `lines` (see `daily_demand`).

    `promotions` (see `promotion_regressor`) must cover the horizon too: promotions are planned ahead.
    The held-out days are the last `backtest_days` of the history; the forecast starts the day after
    `end` (default: the last day with an order). Worker processes are spawned: a script calling this
    needs the usual `if __name__ == "__main__":` guard.
    """
    cfg = config or ForecastConfig()
    began = time.perf_counter()
    all_daily = daily_demand(lines, end=end)
    daily = all_daily[all_daily["kind"].isin(list(kinds))]
    if daily.empty:
        raise InsufficientHistory("no orders to forecast")
    days = pd.DatetimeIndex(sorted(daily["ds"].unique()))
    if len(days) <= cfg.backtest_days:
        raise InsufficientHistory(
            f"{len(days)} days of history: the backtest alone needs {cfg.backtest_days + 1}"
        )
    future = pd.date_range(days[-1] + pd.Timedelta(days=1), periods=cfg.horizon_days, freq="D")
    every_day = days.append(future).to_numpy()
    promo = promotion_regressor(lines, promotions, days.append(future))
    promo_by_series = {s: g["promo"].to_numpy(dtype=float) for s, g in promo.groupby("series")}
    # The platform total: every order once (the category series add up to it).
    total = (
        all_daily[all_daily["kind"] == "shop"].groupby("ds")[list(METRICS)].sum().reindex(days, fill_value=0)
    )
    cut = len(days) - cfg.backtest_days
    tasks: list[_Task] = []
    weeks = {}
    for metric in metrics:
        y_total = total[metric].to_numpy(dtype=float)
        weeks[metric] = (
            weekly_index(every_day, y_total, cut, cfg),
            weekly_index(every_day, y_total, len(days), cfg),
        )
    for series, g in daily.groupby("series", sort=True):
        g = g.sort_values("ds")
        p = promo_by_series.get(str(series), np.zeros(len(every_day)))
        for metric in metrics:
            wk_bt, wk = weeks[metric]
            y = g[metric].to_numpy(dtype=float)
            tasks.append(_Task(str(series), metric, g["ds"].to_numpy(), y, p, wk_bt, wk, cfg))
    outcomes = _run(tasks, cfg)
    meta = daily.drop_duplicates("series").set_index("series")[["kind", "key"]]
    return _assemble(tasks, outcomes, meta, days, future, cfg, time.perf_counter() - began)


def _run(tasks: list[_Task], cfg: ForecastConfig) -> list[_Outcome]:
    """Prophet series in `cfg.workers` processes, the rest (cheap) here. A series still running when
    its time is up gets the fallback; its worker is left to cmdstan's own timeout."""
    outcomes: dict[int, _Outcome] = {}
    heavy = [i for i, t in enumerate(tasks) if _use_prophet(t.y[: len(t.y) - cfg.backtest_days], cfg)]
    light = set(range(len(tasks))) - set(heavy)
    for i in sorted(light):
        outcomes[i] = _fit_series(tasks[i])
    if heavy and cfg.workers <= 1:
        for i in heavy:
            outcomes[i] = _fit_series(tasks[i])
    elif heavy:
        # spawn, not fork: the caller may be a threaded server or Dagster, and fork copies locks.
        pool = ProcessPoolExecutor(max_workers=cfg.workers, mp_context=get_context("spawn"))
        try:
            pending: dict[Future[_Outcome], int] = {pool.submit(_fit_series, tasks[i]): i for i in heavy}
            # Each series may take its timeout twice (backtest and forecast fits); the batch shares the
            # pool's lanes, and the workers need a few seconds to start.
            per_lane = math.ceil(len(heavy) / max(1, cfg.workers))
            deadline = time.monotonic() + 30.0 + 2 * cfg.series_timeout_seconds * per_lane
            while pending:
                left = max(0.0, deadline - time.monotonic())
                done, _ = wait(pending, timeout=left, return_when=FIRST_COMPLETED)
                if not done:
                    break
                for fut in done:
                    i = pending.pop(fut)
                    try:
                        outcomes[i] = fut.result()
                    except Exception as exc:  # a crashed worker: the fallback for this series
                        outcomes[i] = _timed_out(tasks[i], f"worker failed: {type(exc).__name__}: {exc}")
            for fut, i in pending.items():
                fut.cancel()
                outcomes[i] = _timed_out(tasks[i], "timed out")
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    return [outcomes[i] for i in range(len(tasks))]


def _assemble(
    tasks: list[_Task],
    outcomes: list[_Outcome],
    meta: pd.DataFrame,
    days: pd.DatetimeIndex,
    future: pd.DatetimeIndex,
    cfg: ForecastConfig,
    seconds: float,
) -> ForecastResult:
    fc_rows, bt_rows, metric_rows = [], [], []
    held_out = days[-cfg.backtest_days :]
    for task, out in zip(tasks, outcomes, strict=True):
        kind, key = meta.loc[task.series, "kind"], int(meta.loc[task.series, "key"])
        base = {"series": task.series, "kind": kind, "key": key, "metric": task.metric}
        fc_rows.append(
            pd.DataFrame(
                {
                    **base,
                    "ds": future,
                    "yhat": out.yhat,
                    "yhat_lower": out.lower,
                    "yhat_upper": out.upper,
                    "method": out.method,
                }
            )
        )
        actual = task.y[len(task.y) - len(held_out) :]
        point = count_point(out.backtest_yhat)
        bt_rows.append(
            pd.DataFrame(
                {
                    **base,
                    "ds": held_out,
                    "y": actual,
                    "yhat": out.backtest_yhat,
                    "point": point,
                    "naive": out.backtest_naive,
                }
            )
        )
        metric_rows.append(
            {
                **base,
                "method": out.method,
                "smape": smape(actual, point),
                "smape_naive": smape(actual, out.backtest_naive),
                "mae": mae(actual, point),
                "mae_naive": mae(actual, out.backtest_naive),
                "seconds": out.seconds,
                "error": out.error,
            }
        )
    forecasts = pd.concat(fc_rows, ignore_index=True)
    backtest = pd.concat(bt_rows, ignore_index=True)
    metrics = pd.DataFrame(metric_rows)
    return ForecastResult(forecasts, backtest, metrics, _summary(backtest, metrics, seconds, days))


def _summary(
    backtest: pd.DataFrame, metrics: pd.DataFrame, seconds: float, days: pd.DatetimeIndex
) -> dict[str, Any]:
    """Pooled over every held-out series-day; also per kind and metric, and on the means (yhat)."""
    s: dict[str, Any] = {
        "series": int(metrics["series"].nunique()),
        "fits": len(metrics),
        "prophet_fits": int((metrics["method"] == "prophet").sum()),
        "fallback_fits": int((metrics["method"] != "prophet").sum()),
        "failed_fits": int((metrics["error"] != "").sum()),
        "seconds": round(seconds, 3),
        "history_start": days[0].date().isoformat(),
        "history_end": days[-1].date().isoformat(),
    }
    s["smape"] = smape(backtest["y"], backtest["point"])
    s["smape_naive"] = smape(backtest["y"], backtest["naive"])
    s["mae"] = mae(backtest["y"], backtest["point"])
    s["mae_mean_forecast"] = mae(backtest["y"], backtest["yhat"])
    s["mae_naive"] = mae(backtest["y"], backtest["naive"])
    s["smape_improvement"] = 1.0 - s["smape"] / s["smape_naive"] if s["smape_naive"] else 0.0
    s["mae_improvement"] = 1.0 - s["mae"] / s["mae_naive"] if s["mae_naive"] else 0.0
    for (kind, metric), g in backtest.groupby(["kind", "metric"]):
        s[f"smape_{kind}_{metric}"] = smape(g["y"], g["point"])
        s[f"smape_naive_{kind}_{metric}"] = smape(g["y"], g["naive"])
        s[f"mae_{kind}_{metric}"] = mae(g["y"], g["point"])
        s[f"mae_naive_{kind}_{metric}"] = mae(g["y"], g["naive"])
    return s


# --- restocking ----------------------------------------------------------------------------------
def restock_suggestions(
    forecasts: pd.DataFrame,
    lines: pd.DataFrame,
    products: pd.DataFrame,
    *,
    lead_time_days: int = 7,
    cover_days: int = 14,
    share_window_days: int = 28,
) -> pd.DataFrame:
    """Products whose forecast demand over the lead time exceeds their stock.

    A product's demand is its category's unit forecast times the product's share of the category's
    units over the last `share_window_days` of `lines` (see `daily_demand`). `products`: one row per
    product now: product_id, shop_id, category_id, stock int, is_active bool.

    Returns one row per product that needs stock, most urgent first: product_id, shop_id, category_id,
    stock, daily_demand, demand_lead_time, demand_lead_time_upper, days_of_cover, sell_out_date,
    suggested_quantity (enough for the lead time plus `cover_days`, at the upper bound).
    """
    require_columns(products, ("product_id", "shop_id", "category_id", "stock", "is_active"), "products")
    cat = forecasts[(forecasts["kind"] == "category") & (forecasts["metric"] == "units")].sort_values("ds")
    if cat.empty:
        return _empty_restock()
    first_day = cat["ds"].min()
    lead = cat[cat["ds"] < first_day + pd.Timedelta(days=lead_time_days)]
    horizon = cat[cat["ds"] < first_day + pd.Timedelta(days=lead_time_days + cover_days)]
    per_cat = pd.DataFrame(
        {
            "cat_lead": lead.groupby("key")["yhat"].sum(),
            "cat_lead_upper": lead.groupby("key")["yhat_upper"].sum(),
            "cat_cover_upper": horizon.groupby("key")["yhat_upper"].sum(),
            "cat_daily": cat.groupby("key")["yhat"].mean(),
        }
    )
    live = lines[lines["status"].astype(str) != "cancelled"].copy()
    live["ds"] = _day(live["created_at"])
    since = first_day - pd.Timedelta(days=share_window_days)
    recent = live[live["ds"] >= since]
    units = recent.groupby("product_id")["quantity"].sum()
    cat_units = recent.groupby("category_id")["quantity"].sum()
    p = products[products["is_active"].astype(bool)].copy()
    p = p.dropna(subset=["category_id"])
    p["category_id"] = p["category_id"].astype("int64")
    p["share"] = (p["product_id"].map(units).fillna(0) / p["category_id"].map(cat_units)).fillna(0.0)
    p = p.join(per_cat, on="category_id")
    p = p.dropna(subset=["cat_lead"])
    p["stock"] = p["stock"].astype("int64")
    p["daily_demand"] = p["share"] * p["cat_daily"]
    p["demand_lead_time"] = p["share"] * p["cat_lead"]
    p["demand_lead_time_upper"] = p["share"] * p["cat_lead_upper"]
    need = p[(p["daily_demand"] > 0) & (p["demand_lead_time"] > p["stock"])].copy()
    if need.empty:
        return _empty_restock()
    need["days_of_cover"] = need["stock"] / need["daily_demand"]
    need["sell_out_date"] = first_day + pd.to_timedelta(np.floor(need["days_of_cover"]), unit="D")
    want = np.ceil(need["share"] * need["cat_cover_upper"] - need["stock"]).clip(lower=1)
    need["suggested_quantity"] = want.astype("int64")
    cols = list(_RESTOCK_COLUMNS)
    return need.sort_values(["days_of_cover", "product_id"])[cols].reset_index(drop=True)


_RESTOCK_COLUMNS = (
    "product_id",
    "shop_id",
    "category_id",
    "stock",
    "daily_demand",
    "demand_lead_time",
    "demand_lead_time_upper",
    "days_of_cover",
    "sell_out_date",
    "suggested_quantity",
)


def _empty_restock() -> pd.DataFrame:
    return pd.DataFrame(columns=list(_RESTOCK_COLUMNS))


# --- days ----------------------------------------------------------------------------------------
def _day(times: pd.Series) -> pd.Series:
    """UTC calendar day as a naive midnight timestamp (prophet refuses time zones)."""
    t = pd.to_datetime(times, utc=True)
    return t.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize().astype("datetime64[ns]")


def _naive_day(value: Any) -> pd.Timestamp:
    t = pd.Timestamp(value)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.normalize()
