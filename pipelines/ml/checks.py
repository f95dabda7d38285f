"""Whether a trained model may serve: each must beat its baseline on held-out data. The assets run
these on the metrics of the model they just trained, report them as asset checks, and save a model
that fails as not good (the API keeps the previous one, the ml tables keep its outputs).

Checks are not blocking: a bad model must not stop the other models or the publish of the snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetCheckSeverity, AssetCheckSpec

FORECAST_CHECK = "forecast_beats_seasonal_naive"
PRICE_CHECK = "price_beats_no_price_baseline"
SEGMENTS_CHECK = "segments_are_separated"
RECOMMENDER_CHECK = "recommender_beats_popularity"
FRAUD_CHECK = "fraud_beats_base_rate"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _num(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    try:
        out = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return out if out is not None and out == out else None


def forecast_verdict(summary: Mapping[str, Any]) -> Verdict:
    """sMAPE over every held-out series-day below seasonal naive's."""
    ours, naive = _num(summary, "smape"), _num(summary, "smape_naive")
    passed = ours is not None and naive is not None and ours < naive
    return Verdict(
        passed,
        f"backtest sMAPE {ours} against seasonal naive {naive}",
        {"smape": ours, "smape_naive": naive},
    )


def price_verdict(metrics: Mapping[str, Any]) -> Verdict:
    """Held-out log loss below, and AUC above, the same model without the price terms."""
    ll, ll0 = _num(metrics, "log_loss"), _num(metrics, "log_loss_baseline")
    auc, auc0 = _num(metrics, "auc"), _num(metrics, "auc_baseline")
    passed = (
        ll is not None
        and ll0 is not None
        and auc is not None
        and auc0 is not None
        and ll < ll0
        and auc > auc0
    )
    return Verdict(
        passed,
        f"log loss {ll} (no price {ll0}), AUC {auc} (no price {auc0})",
        {"log_loss": ll, "log_loss_baseline": ll0, "auc": auc, "auc_baseline": auc0},
    )


def segments_verdict(silhouette: float, ari: float | None, min_ari: float) -> Verdict:
    """Silhouette above 0 and, when the planted personas are known, agreement with them."""
    passed = silhouette > 0 and (ari is None or ari >= min_ari)
    persona = "no truth file" if ari is None else f"ARI {ari:.3f} (at least {min_ari})"
    return Verdict(
        passed,
        f"silhouette {silhouette:.3f}; {persona}",
        {"silhouette": silhouette, "persona_ari": ari, "min_persona_ari": min_ari},
    )


def recommender_verdict(metrics: Mapping[str, Any], k: int = 10) -> Verdict:
    """precision@k of the blended model above popularity's on later behaviour."""
    ours, pop = _num(metrics, f"precision_at_{k}_blended"), _num(metrics, f"precision_at_{k}_popularity")
    users = int(metrics.get("users", 0) or 0)
    passed = users > 0 and ours is not None and pop is not None and ours > pop
    return Verdict(
        passed,
        f"precision@{k} {ours} against popularity {pop} over {users} users",
        {f"precision_at_{k}": ours, f"precision_at_{k}_popularity": pop, "users": users},
    )


def fraud_verdict(metrics: Mapping[str, Any], labelled: bool) -> Verdict:
    """PR-AUC on later orders above the base rate (what random scores get). Without labels (no truth
    file) there is nothing to score against: the unsupervised model passes, saying so."""
    pr_auc, base = _num(metrics, "pr_auc"), _num(metrics, "base_rate")
    if not labelled:
        return Verdict(True, "no fraud labels: unsupervised model, not evaluated", {"labelled": False})
    passed = pr_auc is not None and base is not None and pr_auc > base
    return Verdict(passed, f"PR-AUC {pr_auc} against base rate {base}", {"pr_auc": pr_auc, "base_rate": base})


def spec(name: str, asset: str, description: str) -> AssetCheckSpec:
    return AssetCheckSpec(name=name, asset=asset, description=description, blocking=False)


# WARN, not ERROR: a bad model is expected now and then (little data, a quiet week) and the previous
# one keeps serving; the check's history shows how often.
SEVERITY = AssetCheckSeverity.WARN
