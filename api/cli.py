"""`store`: one command line for the platform (API, database, users, sessions)."""

from __future__ import annotations

import os
import shutil
import time
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console

from api.core.settings import Settings, get_settings

app = typer.Typer(help="Crypto marketplace platform.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="The store database.", no_args_is_help=True)
users_app = typer.Typer(help="Store users.", no_args_is_help=True)
report_app = typer.Typer(help="Scheduled reports (reports.yml, STORE_REPORTS_FILE).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(report_app, name="report")
console = Console(stderr=True)


@app.command()
def api(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, reload: bool = False) -> None:
    """Serve the store API with uvicorn (migrating the store first outside production)."""
    import uvicorn

    settings = get_settings()
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker records its own request metrics; prometheus_client adds them up from files in
        # this directory, which must be set before the workers import it and emptied at each start.
        prom_dir = settings.data_dir / "prometheus"
        shutil.rmtree(prom_dir, ignore_errors=True)
        prom_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom_dir.resolve())
    console.print(
        f"[bold]Store API[/] on http://{host}:{port}  (docs: /docs, database: "
        f"{settings.database_url.split('@')[-1]})"
    )
    uvicorn.run(
        "api.main:app",
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        proxy_headers=False,
        # Frames past the app's own limit are refused by the protocol layer before they are buffered.
        ws_max_size=settings.ws_max_message_bytes * 4,
        ws_ping_interval=20.0,
        # Chat frames are small JSON: compressing each costs more CPU than the bytes it saves.
        ws_per_message_deflate=False,
        ws_ping_timeout=20.0,
    )


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the store's migrations."""
    from api.db.migrate import upgrade

    settings = get_settings()
    with console.status("Migrating the store…"):
        upgrade(settings.database_url, revision)
    console.print(f"[green]Store migrated to {revision}[/]")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert the store's migrations to REVISION (e.g. base)."""
    from api.db.migrate import downgrade

    downgrade(get_settings().database_url, revision)
    console.print(f"[yellow]Store downgraded to {revision}[/]")


@users_app.command("create-admin")
def create_admin(
    email: str,
    username: Annotated[str, typer.Option(help="Public user name")] = "admin",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
) -> None:
    """Create an admin user (sign-up only creates buyers and sellers)."""
    from pydantic import ValidationError

    from api.auth import service
    from api.auth.schemas import RegisterIn
    from api.core.clock import SystemClock
    from api.core.errors import ApiError
    from api.db.engine import Store
    from api.outbox.service import Uow

    try:
        body = RegisterIn.model_validate({"email": email, "username": username, "password": password})
    except ValidationError as exc:
        console.print(f"[red]Invalid input:[/] {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from exc
    settings = get_settings()
    store = Store.from_settings(settings)
    with store.write() as db:
        uow = Uow(session=db, now=SystemClock().now())
        try:
            user = service.register(uow, settings, body)
            service.set_role(uow, user.id, "admin")
        except ApiError as exc:
            console.print(f"[red]{exc.message}[/]")
            raise typer.Exit(1) from exc
        uow.commit()
    console.print(f"[green]Admin {email} created (id {user.id})[/]")


@app.command("expire-sessions")
def expire_sessions() -> None:
    """End every session idle for longer than the limit (the API also does this every minute)."""
    from api.auth.service import expire_idle_sessions
    from api.core.clock import SystemClock
    from api.db.engine import Store

    settings = get_settings()
    n = expire_idle_sessions(Store.from_settings(settings), settings, SystemClock().now())
    console.print(f"{n} idle session(s) ended")


@report_app.command("send")
def report_send(
    name: str,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The day it is for, YYYY-MM-DD (default today, UTC)")
    ] = None,
) -> None:
    """Build report NAME of the reports file and email it now (what its schedule's run does)."""
    from datetime import UTC, date, datetime

    from api.notifications.channels import DeliveryError
    from dashboard.reports.filters import OutOfScope
    from pipelines.reports.definitions import ReportsFileError, load
    from pipelines.reports.jobs import send_report_now
    from warehouse.duckdb import WarehouseUnavailable

    settings = get_settings()
    try:
        day = date.fromisoformat(as_of) if as_of else datetime.now(UTC).date()
        with console.status(f"Building and sending report {name}…"):
            sent = send_report_now(settings, load(settings.reports_file).get(name), day)
    except (ValueError, KeyError, ReportsFileError, WarehouseUnavailable, OutOfScope, DeliveryError) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        console.print(f"[red]Report {name} not sent: {reason}[/]")
        raise typer.Exit(1) from exc
    files = ", ".join(f"{n} ({size:,} bytes)" for n, size in sent.attachments)
    console.print(
        f"[green]Report {name} ({sent.start} to {sent.end}) sent to {', '.join(sent.recipients)}:[/] {files}"
    )


@app.command()
def dashboard(host: str = "127.0.0.1", port: int = 8501) -> None:
    """Serve the BI dashboard (Streamlit) with the store's settings."""
    from dashboard.run import serve

    raise typer.Exit(serve(port=port, address=host))


def _backfill(settings: Settings, prof_name: str, days: int | None, seed: int) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from simulator.client import ApiFailed
    from simulator.engine import run_backfill
    from simulator.profiles import get_profile

    try:
        prof = get_profile(prof_name)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    n = days or prof.days
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"Simulating {prof.name} (seed {seed}), days", total=n)
            result = run_backfill(
                settings, prof, seed=seed, days=n, on_day=lambda d, _n: progress.update(task, completed=d + 1)
            )
    except ApiFailed as exc:
        hint = " (this store already holds this seed's users: use a fresh store or another seed)"
        console.print(f"[red]The simulation stopped: {exc}[/]" + (hint if exc.status == 409 else ""))
        raise typer.Exit(1) from exc
    console.print(
        f"[green]{n} days simulated:[/] {result.orders} orders ({result.fraudulent_orders} fraudulent), "
        f"{result.requests} requests in {result.seconds:.1f} s = "
        f"[bold]{result.requests_per_second:.0f} requests/s[/]; ground truth in {result.truth_path}"
    )


def _live(settings: Settings, url: str, rate: float, duration: float | None) -> None:
    from rich.live import Live

    from simulator.live import LiveStats, NoWorld, run_live

    def line(stats: LiveStats) -> str:
        up = time.monotonic() - stats.started
        err = f"  [red]last error: {stats.last_error}[/]" if stats.last_error else ""
        return (
            f"[bold]Live traffic[/] → {url}: {stats.sessions} visits done, {stats.running} running, "
            f"{stats.failed_sessions} failed, {up:.0f} s{err}"
        )

    try:
        with Live(line(LiveStats()), console=console, refresh_per_second=2) as view:
            run_live(
                url,
                settings.data_dir,
                sessions_per_minute=rate,
                duration=duration,
                on_tick=lambda stats: view.update(line(stats)),
            )
    except NoWorld as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        console.print("[yellow]Live traffic stopped[/]")


@app.command()
def simulate(
    profile: Annotated[str, typer.Option(help="Size: small, demo or large")] = "demo",
    days: Annotated[int | None, typer.Option(min=1, help="Simulated days (default: the profile's)")] = None,
    seed: Annotated[int, typer.Option(help="The same seed gives the same data")] = 7,
    live: Annotated[
        bool, typer.Option("--live", help="Trickle live traffic at a running API instead")
    ] = False,
    url: Annotated[str, typer.Option(help="The running API, for --live")] = "http://127.0.0.1:8000",
    rate: Annotated[float, typer.Option(min=0.1, help="Live visits per minute")] = 30.0,
    duration: Annotated[float | None, typer.Option(min=1, help="Stop live traffic after seconds")] = None,
) -> None:
    """Backfill simulated history through the in-process API (ground truth in the data dir), or with
    --live act in real time against a running API, on the marketplace a backfill planted."""
    from api.db.migrate import upgrade

    settings = get_settings()
    if live:
        _live(settings, url, rate, duration)
        return
    with console.status("Migrating the store…"):
        upgrade(settings.database_url)
    _backfill(settings, profile, days, seed)


@app.command()
def demo(
    reset: Annotated[
        bool, typer.Option("--reset", help="Start over: drop the store, truth and warehouse")
    ] = False,
    profile: Annotated[str, typer.Option(help="Size of the simulated marketplace")] = "demo",
    days: Annotated[int | None, typer.Option(min=1, help="Simulated days (default: the profile's)")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulation")] = 7,
    api_port: int = 8000,
    dagster_port: int = 3000,
    dashboard_port: int = 8501,
    rate: Annotated[float, typer.Option(min=0.1, help="Live visits per minute")] = 30.0,
    no_live: Annotated[bool, typer.Option("--no-live", help="Do not start live traffic")] = False,
) -> None:
    """The main job: history through the API, the pipeline, then API + Dagster UI + dashboard with live
    traffic until Ctrl-C. A second run reuses the data (unless --reset)."""
    from api.db.migrate import upgrade
    from simulator.demo import DemoFailed, Ports, reset_store, start_services, store_state

    settings = get_settings()
    began = time.monotonic()
    if reset:
        with console.status("Resetting the store, ground truth and warehouse…"):
            reset_store(settings)
    with console.status("Migrating the store…"):
        upgrade(settings.database_url)
    users, has_truth = store_state(settings)
    if users and has_truth:
        console.print(
            f"[green]Reusing the store[/] ({users} users) and its ground truth: --reset starts over"
        )
    elif users:
        console.print(
            f"[yellow]The store holds {users} users but no ground truth in {settings.data_dir}:[/] "
            "not simulating over it (use --reset, or another STORE_DATA_DIR); live traffic needs the truth."
        )
        no_live = True
    else:
        _backfill(settings, profile, days, seed)
    if not _pipeline(settings):
        console.print("[yellow]Going on without fresh warehouse data: see the failures above[/]")
    # The models serve recommendations, prices, fraud scores and insights; a reused data dir keeps its
    # trained models (`store pipeline --job train`, or the hourly schedule, retrains).
    elif _needs_training(settings) and not _pipeline(settings, job="train"):
        console.print("[yellow]Going on without trained models: see the failures above[/]")
    ports = Ports(api_port, dagster_port, dashboard_port)
    services = start_services(settings, ports)
    try:
        with console.status("Starting the API, the Dagster UI and the dashboard…"):
            services.wait_ready()
        console.print(
            f"[green]Up in {time.monotonic() - began:.0f} s[/] (logs in {settings.data_dir / 'logs'}):"
        )
        for svc in services.items:
            console.print(f"  [bold]{svc.name:<11}[/] {svc.url}")
        console.print("Ctrl-C stops everything.")
        if no_live:
            while True:
                time.sleep(3600)
        else:
            _live(settings, f"http://127.0.0.1:{ports.api}", rate, None)
    except DemoFailed as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass
    finally:
        with console.status("Stopping…"):
            services.stop()
        console.print("[yellow]Stopped the API, the Dagster UI and the dashboard.[/]")


def _needs_training(settings: Settings) -> bool:
    """No model was ever trained in this data dir (good or not: a young store may not beat baselines)."""
    from ml.registry import versions
    from pipelines.ml.assets import MODEL_NAMES

    assert settings.models_dir is not None
    return not any(versions(settings.models_dir, name) for name in MODEL_NAMES)


def _pipeline(settings: Settings, job: str = "refresh") -> bool:
    """Runs the pipeline in this process, recorded where the Dagster UI of this data dir sees it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from pipelines.run import Progress as Step
    from pipelines.run import instance_for, run_pipeline

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} assets"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("Pipeline: starting", total=None)

        def show(step: Step) -> None:
            if step.kind == "materialized":
                progress.update(task, advance=1, description=f"Pipeline: {step.step} done")
            elif step.kind == "started":
                progress.update(task, description=f"Pipeline: {step.step}")

        with instance_for(settings) as instance:
            summary = run_pipeline(settings, on_progress=show, instance=instance, job=job)
    events = summary.materialized.get("raw_events", {})
    if summary.success:
        console.print(
            f"[green]Pipeline done[/] in {summary.seconds:.1f} s: {len(summary.materialized)} assets, "
            f"{events.get('rows_loaded', 0)} new events; checks "
            f"{sum(summary.checks.values())}/{len(summary.checks)} passed (run {summary.run_id[:8]})"
        )
    else:
        console.print(f"[red]Pipeline failed[/] (run {summary.run_id[:8]}): " + "; ".join(summary.failures))
    return summary.success


class PipelineJob(StrEnum):
    refresh = "refresh"
    ingest = "ingest"
    train = "train"


@app.command()
def pipeline(
    job: Annotated[
        PipelineJob,
        typer.Option(
            help="refresh: load, dbt build, checks, publish; ingest: load and publish only; train: train "
            "the models on the warehouse, write the ml tables and recommendations, publish."
        ),
    ] = PipelineJob.refresh,
) -> None:
    """Run the pipeline once over the store (the run the Dagster UI's job of that name makes)."""
    if not _pipeline(get_settings(), job=job.value):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
