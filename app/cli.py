"""The `cashback` command: serve | api | worker | migrate | shops create | reconcile | doctor |
openapi."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import embedded, migrate
from app.config import Settings, get_settings
from app.core.db import create_engine, create_sessionmaker
from app.core.resources import Resources
from app.shops import service as shop_service
from app.shops.models import ProcessingMode

cli = typer.Typer(help="Cashback processing service.", no_args_is_help=True, add_completion=False)
shops_cli = typer.Typer(help="Manage shops.", no_args_is_help=True)
cli.add_typer(shops_cli, name="shops")

DEMO_DOMAIN = "demo.myshopify.com"
DEMO_FILE = "demo-shop.json"


def _configure_logging(settings: Settings) -> None:
    from app.observability.logs import configure_logging

    configure_logging(settings, sys.stderr)


@contextmanager
def resolved_settings(*, need_redis: bool = True) -> Iterator[Settings]:
    """The settings with URLs filled in: configured servers, or embedded ones for the block."""
    settings = get_settings()
    missing_db = settings.database_url is None
    missing_redis = need_redis and settings.redis_url is None
    if not (missing_db or missing_redis):
        yield settings
        return
    servers = embedded.start(settings.data_dir, postgres=missing_db, redis=missing_redis)
    try:
        yield settings.model_copy(
            update={
                "database_url": settings.database_url or servers.database_url,
                "redis_url": settings.redis_url or servers.redis_url,
            }
        )
    finally:
        servers.stop()


def _require_urls(settings: Settings, command: str) -> None:
    if settings.database_url is None or settings.redis_url is None:
        typer.echo(
            f"`cashback {command}` needs CASHBACK_DATABASE_URL and CASHBACK_REDIS_URL; "
            "`cashback serve` runs everything on embedded servers instead.",
            err=True,
        )
        raise typer.Exit(2)


@asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions for a one-off command that needs only the database."""
    assert settings.database_url
    engine = create_engine(settings.database_url, pool_size=1, pooler=settings.database_pooler)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def _create_shop(
    settings: Settings,
    domain: str,
    currency: str,
    mode: ProcessingMode,
    secret: str | None,
) -> dict[str, str]:
    async with _sessions(settings) as sessions, sessions() as session:
        created = await shop_service.create_shop(
            session, domain=domain, currency=currency, mode=mode, webhook_secret=secret
        )
        await session.commit()
    return {
        "id": str(created.shop.id),
        "domain": created.shop.domain,
        "api_key": created.api_key,
        "webhook_secret": created.shop.webhook_secret,
    }


async def _ensure_demo_shop(settings: Settings) -> dict[str, str] | None:
    """On the very first start (no shop at all), create the demo shop; else nothing."""
    async with _sessions(settings) as sessions, sessions() as session:
        if await shop_service.any_shop(session):
            return None
    return await _create_shop(settings, DEMO_DOMAIN, "USD", ProcessingMode.automatic, None)


def _print_demo(shop: dict[str, str], port: int, saved_to: Path) -> None:
    base = f"http://127.0.0.1:{port}"
    typer.echo(
        f"""
Demo shop created: {shop["domain"]}
  API key:        {shop["api_key"]}   (shown once; also saved in {saved_to})
  Webhook secret: {shop["webhook_secret"]}

Send it a signed orders/paid webhook, then read the customer's balance:

  body=examples/orders-paid.json; id=$(python3 -c 'import uuid; print(uuid.uuid4())')
  sig=$(openssl dgst -sha256 -hmac '{shop["webhook_secret"]}' -binary "$body" | base64)
  curl -s -X POST {base}/webhooks/shopify --data-binary @"$body" \\
    -H 'Content-Type: application/json' -H "X-Shopify-Hmac-Sha256: $sig" \\
    -H 'X-Shopify-Topic: orders/paid' -H 'X-Shopify-Shop-Domain: {shop["domain"]}' \\
    -H "X-Shopify-Webhook-Id: $id" -H "X-Shopify-Event-Id: $id"
  curl -s {base}/v1/orders -H 'Authorization: Bearer {shop["api_key"]}'

Or open the merchant console at {base}/console and sign in with the API key.
"""
    )


async def _run_api_and_worker(settings: Settings, host: str, port: int) -> None:
    from workers.worker import build_worker

    resources = Resources.open(settings)
    from app.main import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, resources),
            host=host,
            port=port,
            access_log=False,
            timeout_graceful_shutdown=5,  # open event streams must not hold up Ctrl-C
        )
    )
    worker = build_worker(settings, handle_signals=False)
    worker_task = asyncio.create_task(worker.async_run())
    try:
        await server.serve()
    finally:
        worker_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker_task
        await worker.close()
        await resources.close()


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run everything in one process: API and worker, on embedded servers unless configured."""
    base = get_settings()
    _configure_logging(base)
    with resolved_settings() as settings:
        assert settings.database_url
        migrate.upgrade(settings.database_url)
        demo = asyncio.run(_ensure_demo_shop(settings))
        if demo is not None:
            saved_to = settings.data_dir.resolve() / DEMO_FILE
            saved_to.parent.mkdir(parents=True, exist_ok=True)
            saved_to.write_text(json.dumps(demo, indent=2))
            saved_to.chmod(0o600)
            _print_demo(demo, port, saved_to)
        # uvicorn re-raises the Ctrl-C it caught once it has stopped; a quiet handler lets the
        # worker and the embedded servers shut down cleanly afterwards.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: None)
        asyncio.run(_run_api_and_worker(settings, host, port))
    typer.echo("stopped")


@cli.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",  # noqa: S104
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the HTTP API alone (production)."""
    settings = get_settings()
    _require_urls(settings, "api")
    _configure_logging(settings)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the service's own log format (JSON in production)
        timeout_graceful_shutdown=5,  # open event streams must not hold up a restart
        # With --workers, a child that has not answered the supervisor's ping within this is
        # killed and restarted; importing the app takes longer than uvicorn's 5 s on a busy
        # machine, which restarted children forever.
        timeout_worker_healthcheck=60,
    )


@cli.command()
def worker(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 0 if a worker reported healthy recently, else 1.")
    ] = False,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=1,
            help="Worker processes side by side (about one per core); only the first serves "
            "/metrics.",
        ),
    ] = 1,
) -> None:
    """Run arq worker processes (production); scale with --processes or more machines."""
    from app.observability.worker import worker_is_healthy

    settings = get_settings()
    _require_urls(settings, "worker")
    _configure_logging(settings)
    if check:
        raise typer.Exit(0 if asyncio.run(worker_is_healthy(settings)) else 1)
    if processes == 1:
        _run_worker(settings, 0)
        return
    raise typer.Exit(_run_worker_processes(settings, processes))


def _run_worker(settings: Settings, index: int) -> None:
    from app.observability.metrics import WorkerMetrics
    from app.observability.worker import serve_metrics
    from workers.worker import build_worker

    if index > 0:  # one metrics port per machine
        settings = settings.model_copy(update={"worker_metrics_port": 0})
    metrics = WorkerMetrics()
    serve_metrics(settings, metrics)
    build_worker(settings, metrics=metrics).run()


def _run_worker_processes(settings: Settings, count: int) -> int:
    """Fork `count` workers (nothing is connected yet), pass SIGTERM/SIGINT on to them, and
    wait for all; returns the worst exit code."""
    import multiprocessing
    import os

    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_run_worker, args=(settings, i), name=f"cashback-worker-{i}")
        for i in range(count)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid is not None and child.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()
    return max(abs(child.exitcode or 0) for child in children)


@cli.command("migrate")
def migrate_command() -> None:
    """Bring the database schema to the latest migration."""
    _configure_logging(get_settings())
    with resolved_settings(need_redis=False) as settings:
        assert settings.database_url
        migrate.upgrade(settings.database_url)
    typer.echo("database at head")


@shops_cli.command("create")
def shops_create(
    domain: Annotated[str, typer.Option(help="The store's domain, e.g. acme.myshopify.com.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code of the shop's money.")] = "USD",
    mode: Annotated[ProcessingMode, typer.Option(help="Processing mode.")] = (
        ProcessingMode.automatic
    ),
    webhook_secret: Annotated[
        str | None, typer.Option(help="Shopify's signing secret; generated when omitted.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a shop with its first admin API key (printed once)."""
    with resolved_settings(need_redis=False) as settings:
        try:
            shop = asyncio.run(_create_shop(settings, domain, currency, mode, webhook_secret))
        except (ValueError, shop_service.ShopExists) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(shop))
    else:
        for key, value in shop.items():
            typer.echo(f"{key}: {value}")


@cli.command()
def openapi(
    check: Annotated[bool, typer.Option(help="Fail if openapi.yaml is out of date.")] = False,
) -> None:
    """Write openapi.yaml from the app (or check it is current)."""
    from app import openapi as spec

    if check:
        if spec.SPEC_PATH.read_text() != spec.render():
            typer.echo("openapi.yaml is out of date: run `cashback openapi`", err=True)
            raise typer.Exit(1)
        return
    spec.write()
    typer.echo(f"wrote {spec.SPEC_PATH}")


def main() -> None:
    cli()


async def _reconcile(settings: Settings, domain: str, since: str) -> list[str]:
    from datetime import date

    from app.shopify import reconcile

    resources = Resources.open(settings)
    try:
        summary = await reconcile.reconcile_domain(
            resources, domain, since=date.fromisoformat(since)
        )
    finally:
        await resources.close()
    return summary.lines()


@cli.command("reconcile")
def reconcile_command(
    shop: Annotated[str, typer.Option(help="The store's domain, e.g. acme.myshopify.com.")],
    since: Annotated[str, typer.Option(help="First day to look at, YYYY-MM-DD (UTC).")],
) -> None:
    """Ingest paid orders the webhooks missed since a day, and report customers whose store
    credit on Shopify differs from the ledger."""
    from app.credit_sync.service import NoAdminAccess
    from app.shopify.admin import AdminApiError
    from app.shopify.reconcile import UnknownShop

    _configure_logging(get_settings())
    with resolved_settings() as settings:
        try:
            lines = asyncio.run(_reconcile(settings, shop, since))
        except (ValueError, UnknownShop, NoAdminAccess, AdminApiError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    for line in lines:
        typer.echo(line)


async def _doctor(
    settings: Settings,
    domain: str | None,
    window_s: float,  # seconds
) -> dict[str, object]:
    from datetime import timedelta

    from sqlalchemy import select

    from app import doctor
    from app.shops.models import Shop

    async with _sessions(settings) as sessions, sessions() as session:
        shop_id = None
        if domain is not None:
            shop_id = await session.scalar(select(Shop.id).where(Shop.domain == domain.lower()))
            if shop_id is None:
                raise ValueError(f"no shop {domain}")
        report = await doctor.examine(session, shop_id=shop_id, window=timedelta(seconds=window_s))
    return {"report": report.as_dict(), "lines": report.lines()}


@cli.command("doctor")
def doctor_command(
    shop: Annotated[
        str | None, typer.Option(help="Check one store only, e.g. acme.myshopify.com.")
    ] = None,
    window: Annotated[
        float, typer.Option(help="Seconds work may take before it counts as stuck.", min=0)
    ] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check the ledger's invariants; exits 1 when any is broken."""
    _configure_logging(get_settings())
    with resolved_settings(need_redis=False) as settings:
        try:
            result = asyncio.run(_doctor(settings, shop, window))
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    report = result["report"]
    assert isinstance(report, dict)
    if as_json:
        typer.echo(json.dumps(report))
    else:
        lines = result["lines"]
        assert isinstance(lines, list)
        for line in lines:
            typer.echo(line)
    raise typer.Exit(0 if report["ok"] else 1)
