"""Run the pipeline in this process, for a command line: `run_pipeline(settings, on_progress=...)` loads
the store, checks the raw layer, builds the dbt models with their tests, checks the marts and publishes
the read snapshot, on whichever warehouse `settings` names (DuckDB file or PostgreSQL). Also the Dagster
instance of a data dir (`instance_for`, `dagster_home`) that records runs where the UI sees them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from dagster import DagsterEventType, DagsterInstance, EventLogEntry
from dagster._core.instance.ref import InstanceRef
from dagster._core.utils import make_new_run_id

from api.core.settings import Settings
from pipelines.definitions import build_definitions
from pipelines.ingest.schedules import REFRESH_JOB
from pipelines.ml.schedules import TRAIN_JOB

# The instance's configuration, for `dagster dev` run from the repository root with DAGSTER_HOME unset.
ROOT_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
# Where the root file puts the instance's directories, relative to the repository root.
_ROOT_HOME = PurePosixPath("data/dagster")
_HOME_DIR = "dagster"
_CONFIG_FILE = "dagster.yaml"
# Short names a command line may use for a job (`store pipeline --job train`).
JOB_ALIASES = {"train": TRAIN_JOB}
_GENERATED_HEADER = (
    "# Written by pipelines.run.dagster_home from the repository's dagster.yaml, with its directories\n"
    "# made absolute under this one (DAGSTER_HOME). Edit that file instead: this one is rewritten.\n"
)


@dataclass(frozen=True)
class Progress:
    """One step of the run as it happens: kind is started, materialized, check, failed or log."""

    kind: str
    step: str
    message: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineSummary:
    run_id: str
    success: bool
    seconds: float
    materialized: Mapping[str, Mapping[str, Any]]  # asset name -> its metadata (rows, seconds, ...)
    checks: Mapping[str, bool]  # check name -> passed
    failures: tuple[str, ...]  # failed steps and why


def instance_config(home: Path, source: Path = ROOT_DAGSTER_YAML) -> dict[str, Any]:
    """The configuration of `source` (the root dagster.yaml) with every `base_dir` moved from under
    data/dagster to the same place under `home`, an absolute directory."""
    if not home.is_absolute():
        raise ValueError(f"the Dagster home must be absolute, not {home}")
    config: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8"))
    return {key: _rehome(value, home, source) for key, value in config.items()}


def _rehome(value: Any, home: Path, source: Path) -> Any:
    if isinstance(value, dict):
        return {
            k: _home_path(v, home, source) if k == "base_dir" else _rehome(v, home, source)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rehome(v, home, source) for v in value]
    return value


def _home_path(value: Any, home: Path, source: Path) -> str:
    # Relative paths would resolve against the working directory of whichever process opens the
    # instance (the CLI, `dagster dev`), splitting one history across several places.
    try:
        relative = PurePosixPath(str(value)).relative_to(_ROOT_HOME)
    except ValueError:
        raise ValueError(f"{source}: base_dir {value!r} is not under {_ROOT_HOME}") from None
    return str(home / relative)


def dagster_home(settings: Settings) -> Path:
    """`<data_dir>/dagster`, absolute, holding a dagster.yaml that keeps runs, event logs, schedules and
    compute logs under it. Start `dagster dev -m pipelines.definitions` with `DAGSTER_HOME=<this>` to see
    the runs recorded by `instance_for(settings)`."""
    home = (settings.data_dir / _HOME_DIR).resolve()
    text = _GENERATED_HEADER + yaml.safe_dump(instance_config(home), sort_keys=False)
    target = home / _CONFIG_FILE
    # Rewritten only on a change, so a running `dagster dev` never sees the file replaced for nothing.
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        home.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{_CONFIG_FILE}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)  # readers see the old file or the new one, never half of it
    return home


def instance_for(settings: Settings) -> DagsterInstance:
    """The persistent Dagster instance of `settings.data_dir` (see `dagster_home`). The caller disposes
    of it (`with instance_for(settings) as instance: ...`)."""
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home(settings))))


def _value(raw: Any) -> Any:
    return getattr(raw, "value", raw)


def _progress(entry: EventLogEntry) -> Progress | None:
    step = entry.step_key or ""
    event = entry.dagster_event
    if event is None:
        return Progress("log", step, entry.user_message) if entry.user_message else None
    kind = event.event_type
    if kind == DagsterEventType.STEP_START:
        return Progress("started", step, f"{step} started")
    if kind == DagsterEventType.ASSET_MATERIALIZATION:
        mat = event.step_materialization_data.materialization
        meta = {k: _value(v) for k, v in mat.metadata.items()}
        return Progress("materialized", mat.asset_key.to_user_string(), "materialized", meta)
    if kind == DagsterEventType.ASSET_CHECK_EVALUATION:
        ev = event.asset_check_evaluation_data
        meta = {k: _value(v) for k, v in ev.metadata.items()}
        verdict = "passed" if ev.passed else "FAILED"
        return Progress(
            "check", ev.check_name, f"check {ev.check_name} {verdict}", {"passed": ev.passed, **meta}
        )
    if kind == DagsterEventType.STEP_FAILURE:
        error = event.step_failure_data.error
        # Dagster wraps the step's exception; the innermost cause says what went wrong.
        while error is not None and error.cause is not None:
            error = error.cause
        return Progress("failed", step, error.message.strip() if error else "failed")
    return None


def run_pipeline(
    settings: Settings,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    instance: DagsterInstance | None = None,
    console_log_level: str = "ERROR",
    job: str = REFRESH_JOB,
) -> PipelineSummary:
    """Run `job` (by default the whole refresh: every ingest asset, the dbt build, every check, the
    publish) in this process with resources from `settings`. Failures are reported in the summary, not
    raised; a failed step or blocking check skips what is downstream of it. Pass
    `instance_for(settings)` to record the run where the Dagster UI sees it; by default the run is kept
    in memory. `job="ingest"` loads and publishes without building the dbt models; `job="train"` (or
    "train_models") trains the models on the warehouse as it is and publishes the ml tables."""
    definitions = build_definitions(settings, retries=False, echo_dbt_logs=False)
    job_def = definitions.resolve_job_def(JOB_ALIASES.get(job, job))
    run_id = make_new_run_id()
    materialized: dict[str, dict[str, Any]] = {}
    checks: dict[str, bool] = {}
    failures: list[str] = []

    def listen(entry: EventLogEntry) -> None:
        progress = _progress(entry)
        if progress is None:
            return
        if progress.kind == "materialized":
            materialized[progress.step] = dict(progress.metadata)
        elif progress.kind == "check":
            checks[progress.step] = bool(progress.metadata["passed"])
        elif progress.kind == "failed":
            failures.append(f"{progress.step}: {progress.message}")
        if on_progress is not None:
            on_progress(progress)

    owned = instance is None
    active = DagsterInstance.ephemeral() if instance is None else instance
    started = time.perf_counter()
    try:
        active.add_event_listener(run_id, listen)
        result = job_def.execute_in_process(
            # The caller shows progress; Dagster's own console lines would only duplicate it.
            run_config={"loggers": {"console": {"config": {"log_level": console_log_level}}}},
            instance=active,
            run_id=run_id,
            raise_on_error=False,
        )
    finally:
        if owned:
            active.dispose()
    return PipelineSummary(
        run_id=run_id,
        success=result.success,
        seconds=time.perf_counter() - started,
        materialized=materialized,
        checks=checks,
        failures=tuple(failures),
    )
