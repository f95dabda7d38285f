"""The suites as Dagster asset checks: each reads its rows from the warehouse and validates them with
Great Expectations."""
# No `from __future__ import annotations` here: Dagster reads the parameter annotations (context,
# resources) at decoration time and needs them as real types.

from collections.abc import Iterable

from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    asset_check,
)

from pipelines.ingest.resources import WarehouseResource
from pipelines.quality.rules import Suite
from pipelines.quality.validate import Outcome, validate


def result_of(suite: Suite, outcome: Outcome) -> AssetCheckResult:
    failed = outcome.failed
    table = "\n".join(
        ["| rule | passed | unexpected | sample |", "|---|---|---|---|"]
        + [
            f"| {r.rule} | {'yes' if r.success else 'NO'} | {r.unexpected} | {', '.join(r.sample)} |"
            for r in outcome.rules
        ]
    )
    return AssetCheckResult(
        passed=outcome.success,
        # Only an ERROR failure of a blocking check stops what is downstream.
        severity=AssetCheckSeverity.ERROR if suite.blocking else AssetCheckSeverity.WARN,
        description="; ".join(f"{r.rule}: {r.unexpected} unexpected" for r in failed) or None,
        metadata={
            "rows": outcome.rows,
            "rules": len(outcome.rules),
            "failed_rules": [r.rule for r in failed],
            "unexpected": sum(r.unexpected for r in failed),
            "results": MetadataValue.md(table),
        },
    )


def suite_check(suite: Suite) -> AssetChecksDefinition:
    @asset_check(
        name=suite.name,
        asset=AssetKey.from_user_string(suite.asset),
        blocking=suite.blocking,
        additional_deps=[AssetKey.from_user_string(a) for a in suite.reads],
        description=suite.description or f"Great Expectations: {suite.summary()}.",
        metadata={"rules": suite.summary()},
    )
    def _check(warehouse: WarehouseResource) -> AssetCheckResult:
        return result_of(suite, validate(suite, warehouse.frame(suite.query())))

    return _check


def suite_checks(suites: Iterable[Suite]) -> list[AssetChecksDefinition]:
    return [suite_check(s) for s in suites]
