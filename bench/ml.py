"""Issue 6's model targets on the `demo` profile: held-out quality of every model against its baseline,
and the time to train them all.

    python -m bench.ml                 # reuse data/bench/ml-demo (simulated once, ~5 min), train, report
    python -m bench.ml --reset         # simulate the demo profile again first
    python -m bench.ml --serving       # also run bench/recommendations.py (p99 of the endpoint)

The store is the real simulator's `demo` profile (2,000 users, 200 shops, 5,000 products, 90 days, seed
7) driven through the real API, with its ground truth (`truth.json`). The refresh pipeline loads it into
a DuckDB warehouse and builds the marts; then the `train_models` job trains every model as Dagster does
(`store pipeline --job train`). The figures are read back from the model registry's manifests, which
hold each model's metrics on held-out data (a time split, or the last 14 days for the forecasts):

| model | figure | target |
| --- | --- | --- |
| demand forecast | sMAPE improvement over seasonal naive | >= 15% |
| recommender | precision@10, blended / popularity | >= 2x |
| segmentation | adjusted Rand index against the planted personas | >= 0.6 |
| fraud | PR-AUC on the later orders | >= 0.8 |
| all | wall time of the train job | <= 180 s |

Figures go to bench/results/ml.json.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from api.core.settings import Environment, Settings
from api.db.migrate import upgrade
from bench.figures import ROOT, save
from ml import registry
from pipelines.run import run_pipeline
from simulator.engine import run_backfill
from simulator.profiles import get_profile

console = Console()
RESULTS = ROOT / "bench" / "results" / "ml.json"
WORK = ROOT / "data" / "bench" / "ml-demo"
SEED = 7
TARGET_TRAIN_SECONDS = 180.0
app = typer.Typer(add_completion=False, help=__doc__)


def _settings(work: Path) -> Settings:
    return Settings(
        environment=Environment.development,
        data_dir=work,
        database_url=f"sqlite:///{(work / 'store.db').as_posix()}",
        redis_url=None,
        auto_migrate=False,
        _env_file=None,
    )


def _simulate(settings: Settings) -> None:
    upgrade(settings.database_url)
    with console.status("simulating the demo profile through the API (about 5 minutes)…"):
        result = run_backfill(settings, get_profile("demo"), seed=SEED)
    console.print(
        f"demo profile: {result.requests} requests in {result.seconds:.0f} s, {result.orders} orders "
        f"({result.fraudulent_orders} fraudulent)"
    )


def _run(settings: Settings, job: str) -> tuple[float, bool, dict[str, bool], tuple[str, ...]]:
    with console.status(f"pipeline job {job}…"):
        summary = run_pipeline(settings, job=job)
    return summary.seconds, summary.success, dict(summary.checks), summary.failures


def _metrics(models: Path, name: str) -> dict[str, Any]:
    version = registry.latest_version(models, name)
    manifest = registry.read_manifest(models, name, version) if version else None
    if manifest is None:
        raise typer.BadParameter(f"no {name} model in {models}: did the train job fail?")
    metrics: dict[str, Any] = manifest["metrics"]
    return {"version": version, "good": manifest.get("good", True), **metrics}


def _rows(models: Path) -> list[dict[str, Any]]:
    fc, rec = _metrics(models, "forecast"), _metrics(models, "recommender")
    seg, fraud, price = _metrics(models, "segments"), _metrics(models, "fraud"), _metrics(models, "price")
    improvement = 1 - fc["smape"] / fc["smape_naive"]
    lift = rec["precision_at_10_blended"] / rec["precision_at_10_popularity"]
    return [
        {
            "model": "forecast",
            "figure": "sMAPE vs seasonal naive",
            "value": f"{fc['smape']:.1f} vs {fc['smape_naive']:.1f}: {improvement:.1%} better",
            "target": ">= 15% better",
            "met": improvement >= 0.15,
            "detail": f"{fc['series']} series, {fc['prophet_fits']} prophet fits, MAE {fc['mae']:.3f} vs "
            f"{fc['mae_naive']:.3f}",
        },
        {
            "model": "recommender",
            "figure": "precision@10 vs popularity",
            "value": f"{rec['precision_at_10_blended']:.3f} vs {rec['precision_at_10_popularity']:.3f}: "
            f"{lift:.1f}x",
            "target": ">= 2x",
            "met": lift >= 2,
            "detail": f"seed baseline {rec['precision_at_10_seed']:.3f}; recall@10 "
            f"{rec['recall_at_10_blended']:.3f} vs {rec['recall_at_10_popularity']:.3f}; coverage "
            f"{rec['coverage_blended']:.3f} vs {rec['coverage_popularity']:.4f}; {rec['users']} users",
        },
        {
            "model": "segments",
            "figure": "ARI vs planted personas",
            "value": f"{seg['persona_ari']:.3f}",
            "target": ">= 0.6",
            "met": seg["persona_ari"] >= 0.6,
            "detail": f"k={seg['k']} by silhouette ({seg['silhouette']:.3f}), {seg['users']} users",
        },
        {
            "model": "fraud",
            "figure": "PR-AUC, later orders",
            "value": f"{fraud['pr_auc']:.3f}",
            "target": ">= 0.8",
            "met": fraud["pr_auc"] >= 0.8,
            "detail": f"{fraud['kind']}; {fraud['test_frauds']} frauds in {fraud['test_orders']} test orders "
            f"(base rate {fraud['base_rate']:.3f}); precision {fraud['precision']:.3f}, recall "
            f"{fraud['recall']:.3f}",
        },
        {
            "model": "price",
            "figure": "log loss / AUC vs no-price baseline",
            "value": f"{price['log_loss']:.3f} vs {price['log_loss_baseline']:.3f}; AUC {price['auc']:.3f} "
            f"vs {price['auc_baseline']:.3f}",
            "target": "beats the baseline",
            "met": price["log_loss"] < price["log_loss_baseline"] and price["auc"] > price["auc_baseline"],
            "detail": f"price slope {price['slope']:.2f} per log(price / reference); "
            f"{price['test_views']} test views",
        },
    ]


@app.command()
def main(
    reset: Annotated[bool, typer.Option(help="Simulate the demo profile again")] = False,
    serving: Annotated[bool, typer.Option(help="Also run bench/recommendations.py")] = False,
) -> None:
    if reset:
        shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    settings = _settings(WORK)
    if not (WORK / "truth.json").exists():
        _simulate(settings)
    refresh_s, refresh_ok, _, refresh_failures = _run(settings, "refresh")
    if not refresh_ok:
        console.print(f"[red]refresh failed:[/] {refresh_failures}")
        raise typer.Exit(1)
    train_s, train_ok, checks, failures = _run(settings, "train")
    assert settings.models_dir is not None
    rows = _rows(settings.models_dir)

    table = Table(title="issue 6 on the demo profile (held-out figures from the model registry)")
    for col in ("model", "figure", "value", "target", "met"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["model"], r["figure"], r["value"], r["target"], "yes" if r["met"] else "[red]no[/]")
    table.add_row(
        "all",
        "train job wall time",
        f"{train_s:.1f} s",
        f"<= {TARGET_TRAIN_SECONDS:.0f} s",
        "yes" if train_ok and train_s <= TARGET_TRAIN_SECONDS else "[red]no[/]",
    )
    console.print(table)
    for r in rows:
        console.print(f"  {r['model']}: {r['detail']}")
    passed = sum(checks.values())
    console.print(f"checks: {passed}/{len(checks)} passed; failures: {list(failures) or 'none'}")
    results: dict[str, Any] = {
        "demo": {
            "refresh_seconds": round(refresh_s, 1),
            "train_seconds": round(train_s, 1),
            "train_success": train_ok,
            "checks": checks,
            "models": {r["model"]: {k: r[k] for k in ("figure", "value", "target", "met")} for r in rows},
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    }
    save(RESULTS, results, console)
    if serving:
        subprocess.run([sys.executable, "-m", "bench.recommendations", "--reuse"], check=True)
    if not train_ok:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
