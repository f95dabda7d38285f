"""The model registry with real trained models: versions, newest good model, a swap while serving, a
corrupt or missing artifact that leaves the previous model in place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from ml.fraud import FEATURE_NAMES, FraudModel, label_orders, order_features, score_order, train_fraud_model
from ml.registry import (
    ModelHolder,
    has_newer,
    latest_version,
    load_latest,
    read_manifest,
    save_model,
    versions,
)
from tests.ml.conftest import Market
from tests.ml.frames import fraud_labels

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def two_models(market: Market) -> tuple[FraudModel, FraudModel, pd.DataFrame]:
    f = market.frames
    feats = order_features(f.orders, f.users, failed_logins=f.failed_logins, views=f.views)
    labels = label_orders(feats, fraud_labels(market.truth))
    supervised = train_fraud_model(feats, labels)
    unsupervised = train_fraud_model(feats, labels * 0)
    return supervised, unsupervised, feats


def _save(root: Path, model: FraudModel, minutes: int, *, good: bool = True) -> str:
    return save_model(
        root,
        "fraud",
        model,
        training_window=(T0 - timedelta(days=30), T0),
        features=list(FEATURE_NAMES),
        metrics=model.metrics,
        data_version="events:12345",
        good=good,
        now=T0 + timedelta(minutes=minutes),
    )


def test_saved_model_loads_with_its_manifest(
    tmp_path: Path, two_models: tuple[FraudModel, FraudModel, pd.DataFrame]
) -> None:
    supervised, _, feats = two_models
    v = _save(tmp_path, supervised, 1)
    loaded = load_latest(tmp_path, "fraud")
    assert loaded is not None and loaded.version == v == latest_version(tmp_path, "fraud")
    row = feats[list(FEATURE_NAMES)].iloc[0].to_dict()
    assert score_order(loaded.model, row) == score_order(supervised, row)
    m = read_manifest(tmp_path, "fraud", v)
    assert m is not None
    assert m["features"] == list(FEATURE_NAMES) and m["data_version"] == "events:12345"
    assert m["training_window"] == [(T0 - timedelta(days=30)).isoformat(), T0.isoformat()]
    assert m["metrics"]["pr_auc"] == supervised.metrics["pr_auc"]
    assert not [p for p in (tmp_path / "fraud").iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_holder_swaps_to_a_new_model_and_keeps_serving_through_bad_ones(
    tmp_path: Path, two_models: tuple[FraudModel, FraudModel, pd.DataFrame]
) -> None:
    supervised, unsupervised, _ = two_models
    first = _save(tmp_path, supervised, 1)
    holder = ModelHolder(tmp_path, "fraud", check_seconds=0)
    assert holder.get() is not None and holder.get().version == first  # type: ignore[union-attr]
    assert not has_newer(tmp_path, "fraud", first)

    second = _save(tmp_path, unsupervised, 2)
    assert has_newer(tmp_path, "fraud", first)
    served = holder.get()
    assert served is not None and served.version == second and served.model.kind == "isolation_forest"

    # a corrupt artifact lands: the holder keeps the second model
    third = _save(tmp_path, supervised, 3)
    (tmp_path / "fraud" / third / "model.joblib").write_bytes(b"not a model")
    assert holder.get().version == second  # type: ignore[union-attr]
    # and a fresh process (an API restart) also starts on the second
    assert load_latest(tmp_path, "fraud").version == second  # type: ignore[union-attr]

    # a missing artifact, then a manifest that is not JSON
    fourth = _save(tmp_path, supervised, 4)
    (tmp_path / "fraud" / fourth / "model.joblib").unlink()
    assert holder.get().version == second  # type: ignore[union-attr]
    fifth = _save(tmp_path, supervised, 5)
    (tmp_path / "fraud" / fifth / "manifest.json").write_text("{broken")
    assert holder.get().version == second  # type: ignore[union-attr]
    assert load_latest(tmp_path, "fraud").version == second  # type: ignore[union-attr]

    # a model saved as not good (it lost to its baseline) is kept but never served
    _save(tmp_path, supervised, 6, good=False)
    assert latest_version(tmp_path, "fraud") == fifth
    assert load_latest(tmp_path, "fraud").version == second  # type: ignore[union-attr]

    # a good one lands: served at the next check
    seventh = _save(tmp_path, supervised, 7)
    assert holder.get().version == seventh  # type: ignore[union-attr]
    assert versions(tmp_path, "fraud")[0] == seventh and len(versions(tmp_path, "fraud")) == 7


def test_holder_checks_at_most_every_interval(
    tmp_path: Path, two_models: tuple[FraudModel, FraudModel, pd.DataFrame]
) -> None:
    supervised, unsupervised, _ = two_models
    first = _save(tmp_path, supervised, 1)
    holder = ModelHolder(tmp_path, "fraud", check_seconds=3600)
    holder.get()
    _save(tmp_path, unsupervised, 2)
    assert holder.get().version == first  # type: ignore[union-attr]
    assert holder.reload()  # an explicit reload picks it up at once
    assert holder.get().model.kind == "isolation_forest"  # type: ignore[union-attr]


def test_empty_registry_serves_nothing(tmp_path: Path) -> None:
    assert load_latest(tmp_path, "fraud") is None
    assert ModelHolder(tmp_path, "fraud").get() is None
    assert latest_version(tmp_path, "fraud") is None
