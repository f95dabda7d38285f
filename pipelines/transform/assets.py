"""The dbt models as Dagster assets (one per model, grouped by layer), their dbt tests as asset checks,
and the raw_* ingest assets upstream of the dbt sources.

Not partitioned by day, on purpose: the event models are incremental on `_loaded_at` (the load, not
the day the event happened), so a late event is picked up by the next build and lands in its own day,
and the day-level marts are whole tables recomputed from the facts in seconds. Daily partitions would
make each run name the days it rebuilds, which a late event cannot know; the backfill is instead a
full rebuild (`full_refresh` in the run config of the refresh job)."""
# No `from __future__ import annotations` here: Dagster reads the parameter annotations (context,
# resources) at decoration time and needs them as real types.

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, RetryPolicy
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from pipelines.transform.resources import DbtResource

RAW_SOURCE = "raw"
DBT_OP = "dbt_build"


class StoreDbtTranslator(DagsterDbtTranslator):
    """Models keep dbt's key (<schema>/<model>, e.g. marts/mart_shop_daily); the `raw` sources are the
    ingest's own assets (raw_events, raw_orders, ...), so every model sits downstream of the load that
    feeds it."""

    def __init__(self) -> None:
        super().__init__(DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if (
            dbt_resource_props["resource_type"] == "source"
            and dbt_resource_props["source_name"] == RAW_SOURCE
        ):
            return AssetKey(f"raw_{dbt_resource_props['name']}")
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        # fqn is [project, layer, (domain folders...), model]: staging, intermediate, marts[_domain].
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props["resource_type"] != "model" or len(fqn) < 3:
            return super().get_group_name(dbt_resource_props)
        return "_".join(fqn[1:-1]).replace("-", "_")


class DbtBuildConfig(Config):
    """Run config of the dbt step (the UI's launchpad: `ops: {dbt_build: {config: {...}}}`)."""

    full_refresh: bool = False
    """Rebuild the incremental models from all of raw (`dbt build --full-refresh`): the backfill, e.g.
    after a metric definition changed. Normal runs only process rows loaded since the last build."""


def build_dbt_assets(manifest: Path, *, retry_policy: RetryPolicy | None = None) -> AssetsDefinition:
    @dbt_assets(
        manifest=manifest,
        dagster_dbt_translator=StoreDbtTranslator(),
        name=DBT_OP,
        retry_policy=retry_policy,
    )
    def dbt_models(context: AssetExecutionContext, dbt: DbtResource, config: DbtBuildConfig) -> Iterator[Any]:
        # One `dbt build` for whatever is selected: models in dependency order, each followed by its
        # tests, so a failing error-severity test stops the models after it.
        args = ["build", "--full-refresh"] if config.full_refresh else ["build"]
        yield from dbt.relay(dbt.cli(args, context=context))

    return dbt_models
