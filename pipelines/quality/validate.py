"""Running a suite with Great Expectations 1.x over a pandas DataFrame.

The rows are fetched by our own code (DuckDB or PostgreSQL) and handed to an ephemeral pandas
datasource: GX 1.24 reading DuckDB through SQLAlchemy returns wrong results, and a DataFrame is the one
path that behaves the same on both warehouse targets. Money arrives as Python Decimals (object
columns), so comparisons stay exact."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.quality.rules import Between, Equal, InSet, NotNull, References, Rule, Suite, Unique

if TYPE_CHECKING:
    from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext
    from great_expectations.expectations.expectation import Expectation

# Unexpected values shown per failed rule: enough to find the rows, small enough for the UI.
SAMPLE = 5
RULE_INDEX = "rule_index"

_context: AbstractDataContext | None = None
_context_lock = threading.Lock()


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    success: bool
    unexpected: int
    sample: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    suite: str
    rows: int
    rules: tuple[RuleOutcome, ...]

    @property
    def success(self) -> bool:
        return all(r.success for r in self.rules)

    @property
    def failed(self) -> tuple[RuleOutcome, ...]:
        return tuple(r for r in self.rules if not r.success)


def _gx_context() -> AbstractDataContext:
    """One in-memory context per process: no files, no analytics calls, no progress bars."""
    global _context
    with _context_lock:
        if _context is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False),
            )
            _context = gx.get_context(mode="ephemeral", project_config=config)
        return _context


def expectation(rule: Rule) -> Expectation:
    # Imported from their modules: the package re-exports them implicitly only.
    from great_expectations.expectations.core.expect_column_pair_values_to_be_equal import (
        ExpectColumnPairValuesToBeEqual,
    )
    from great_expectations.expectations.core.expect_column_values_to_be_between import (
        ExpectColumnValuesToBeBetween,
    )
    from great_expectations.expectations.core.expect_column_values_to_be_in_set import (
        ExpectColumnValuesToBeInSet,
    )
    from great_expectations.expectations.core.expect_column_values_to_be_unique import (
        ExpectColumnValuesToBeUnique,
    )
    from great_expectations.expectations.core.expect_column_values_to_not_be_null import (
        ExpectColumnValuesToNotBeNull,
    )
    from great_expectations.expectations.core.expect_compound_columns_to_be_unique import (
        ExpectCompoundColumnsToBeUnique,
    )

    match rule:
        case NotNull(column):
            return ExpectColumnValuesToNotBeNull(column=column)
        case Unique(columns) if len(columns) == 1:
            return ExpectColumnValuesToBeUnique(column=columns[0])
        case Unique(columns):
            return ExpectCompoundColumnsToBeUnique(column_list=list(columns))
        case Between(column, low, high):
            return ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)
        case InSet(column, values):
            return ExpectColumnValuesToBeInSet(column=column, value_set=list(values))
        case References():
            return ExpectColumnValuesToBeInSet(column=rule.found_column, value_set=[True])
        case Equal(a, b):
            return ExpectColumnPairValuesToBeEqual(column_A=a, column_B=b)


def _sample(result: dict[str, Any]) -> tuple[str, ...]:
    values = result.get("partial_unexpected_list") or []
    return tuple(str(v) for v in values[:SAMPLE])


def validate(suite: Suite, frame: pd.DataFrame) -> Outcome:
    """Every rule of `suite` over `frame` (the rows `suite.query()` returned)."""
    import great_expectations as gx

    context = _gx_context()
    # A datasource per validation: checks of one run may validate from several threads.
    name = f"{suite.name}_{uuid.uuid4().hex[:8]}"
    source = context.data_sources.add_pandas(name)
    try:
        batch = (
            source.add_dataframe_asset(suite.name)
            .add_batch_definition_whole_dataframe("all")
            .get_batch(batch_parameters={"dataframe": frame})
        )
        expectations = [expectation(r) for r in suite.rules]
        for i, e in enumerate(expectations):
            # GX reports in its own order: the index leads each result back to its rule.
            e.meta = {RULE_INDEX: i}
        gx_suite = gx.ExpectationSuite(name=name, expectations=expectations)
        result = batch.validate(gx_suite, result_format="SUMMARY")
    finally:
        context.data_sources.delete(name)
    by_index = {
        int(((res.expectation_config.meta if res.expectation_config else None) or {})[RULE_INDEX]): res
        for res in result.results
    }
    outcomes = []
    for i, rule in enumerate(suite.rules):
        res = by_index[i]
        details: dict[str, Any] = dict(res.result or {})
        outcomes.append(
            RuleOutcome(
                rule=rule.describe(),
                success=bool(res.success),
                unexpected=int(details.get("unexpected_count") or 0),
                sample=_sample(details),
            )
        )
    return Outcome(suite=suite.name, rows=len(frame), rules=tuple(outcomes))
