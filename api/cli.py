"""`store`: one command line for the platform (API, database, users, sessions)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from api.core.settings import get_settings

app = typer.Typer(help="Crypto marketplace platform.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="The store database.", no_args_is_help=True)
users_app = typer.Typer(help="Store users.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
console = Console(stderr=True)


@app.command()
def api(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, reload: bool = False) -> None:
    """Serve the store API with uvicorn (migrating the store first outside production)."""
    import uvicorn

    settings = get_settings()
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
    store = Store.from_settings(get_settings())
    with store.write() as db:
        uow = Uow(session=db, now=SystemClock().now())
        try:
            user = service.register(uow, body)
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


@app.command()
def simulate(
    profile: Annotated[str, typer.Option(help="Size: small, demo or large")] = "demo",
    days: Annotated[int | None, typer.Option(min=1, help="Simulated days (default: the profile's)")] = None,
    seed: Annotated[int, typer.Option(help="The same seed gives the same data")] = 7,
) -> None:
    """Backfill simulated marketplace history through the in-process API (ground truth: data dir)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from api.db.migrate import upgrade
    from simulator.client import ApiFailed
    from simulator.engine import run_backfill
    from simulator.profiles import get_profile

    try:
        prof = get_profile(profile)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    settings = get_settings()
    n = days or prof.days
    with console.status("Migrating the store…"):
        upgrade(settings.database_url)
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


if __name__ == "__main__":
    app()
