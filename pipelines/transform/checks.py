"""Freshness of the marts, the tables the API and the dashboard read (Dagster's freshness policies,
evaluated by the daemon that `dagster dev` runs; the asset page shows PASS, WARN or FAIL)."""

from __future__ import annotations

from datetime import timedelta

from dagster import AssetsDefinition, AssetSpec, FreshnessPolicy, apply_freshness_policy

MARTS_SCHEMA = "marts"
# Rebuilt by every refresh run (the new-events sensor, within a minute of activity, then the build):
# half an hour is worth a look, two hours means the pipeline stopped or keeps failing.
MARTS_FRESHNESS = FreshnessPolicy.time_window(
    fail_window=timedelta(hours=2), warn_window=timedelta(minutes=30)
)


def _mart_policy(spec: AssetSpec) -> AssetSpec:
    return apply_freshness_policy(spec, MARTS_FRESHNESS) if spec.key.path[0] == MARTS_SCHEMA else spec


def with_mart_freshness(dbt_assets: AssetsDefinition) -> AssetsDefinition:
    return dbt_assets.map_asset_specs(_mart_policy)
