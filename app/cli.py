"""Command line: ``prap serve``, ``migrate``, ``token``, ``openapi``, ``demo``, ``jobs run``,
``rekey-nino-digests``, ``worker``."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

import app.models  # noqa: F401  (every mapper registered before any query)
from app.core.auth import Role, mint_token
from app.core.settings import SANDBOX_JWT_SECRET, Settings

cli = typer.Typer(
    help="PRaP: Provider Referrals and Payments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ROOT = Path(__file__).resolve().parent.parent


def migrate_database(settings: Settings | None = None) -> None:
    """``alembic upgrade head`` against PRAP_DATABASE_URL."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = (settings or Settings()).database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


@cli.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    migrate_database()
    typer.echo("database migrated")


@cli.command()
def token(
    role: Annotated[Role, typer.Option(help="jcp, provider, post or admin")],
    sub: Annotated[str, typer.Option(help="Who the token is for.")] = "developer",
    provider_id: Annotated[str | None, typer.Option(help="Required for role provider.")] = None,
    scope: Annotated[str, typer.Option(help="Space-separated scopes.")] = "referrals claims",
    hours: Annotated[int, typer.Option(help="Lifetime in hours.")] = 8,
) -> None:
    """Mint an HS256 development token with PRAP_JWT_SECRET (or the sandbox secret)."""
    settings = Settings()
    if settings.jwt_public_key:
        raise typer.BadParameter("tokens are RS256 here: mint them with your identity provider")
    if role is Role.provider and not provider_id:
        raise typer.BadParameter("--provider-id is required for role provider")
    key = settings.jwt_secret or (SANDBOX_JWT_SECRET if settings.sandbox else None)
    if key is None:
        raise typer.BadParameter("set PRAP_JWT_SECRET (or PRAP_SANDBOX=1)")
    typer.echo(
        mint_token(
            sub=sub,
            role=role,
            key=key,
            provider_id=provider_id,
            scopes=scope.split(),
            lifetime=timedelta(hours=hours),
        )
    )


@cli.command()
def openapi(
    output: Annotated[Path, typer.Option(help="Where to write it.")] = ROOT
    / "openapi"
    / "openapi.json",
) -> None:
    """Write the OpenAPI document the app serves, and record its version's fingerprint.

    Refuses when the document changed but ``info.version`` did not: bump ``API_VERSION``
    (app/core/openapi.py) and say what changed in CHANGELOG.md."""
    from app.core.versions import record_version
    from app.main import create_app

    document = create_app(Settings(sandbox=False, jwt_secret="unused")).openapi()
    try:
        record_version(document)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    typer.echo(f"wrote {output}")


@cli.command()
def problems(
    readme: Annotated[Path, typer.Option(help="The README whose table to rewrite.")] = ROOT
    / "README.md",
) -> None:
    """Rewrite the README's table of problem codes from the error catalogue."""
    import app.main  # noqa: F401  (every problem class imported)
    from app.core.problems import write_catalogue_table

    write_catalogue_table(readme)
    typer.echo(f"wrote the problem table in {readme}")


@cli.command()
def examples() -> None:
    """Record each operation's examples from a scripted exchange with the real app (in
    process, temporary SQLite, sandbox clock fixed), into openapi/examples.json."""
    from app.examples import record_examples

    typer.echo(record_examples())


@cli.command()
def demo() -> None:
    """Load a demo contract and a few referrals (idempotent)."""
    from app.demo import load_demo_data

    typer.echo(asyncio.run(load_demo_data(Settings())))


@cli.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option()] = 1,
    demo_data: Annotated[bool, typer.Option("--demo/--no-demo")] = False,
) -> None:
    """Migrate, optionally load demo data, and serve with uvicorn."""
    import uvicorn

    migrate_database()
    if demo_data:
        demo()
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        access_log=False,
        log_config=None,
        env_file=None,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
    )


@cli.command("rekey-nino-digests")
def rekey_nino_digests_command() -> None:
    """After rotating PRAP_NINO_DIGEST_KEY (the old key moved to
    PRAP_NINO_DIGEST_PREVIOUS_KEYS): store every referral's digest under the new key."""
    from app.core.database import create_engine, create_session_factory
    from app.privacy.service import rekey_nino_digests
    from app.referrals.digests import NinoDigests

    settings = Settings()
    if not settings.nino_digest_keys:
        raise typer.BadParameter("set PRAP_NINO_DIGEST_KEY (or PRAP_SANDBOX=1)")

    async def run() -> int:
        engine = create_engine(settings)
        try:
            sessions = create_session_factory(engine)
            return await rekey_nino_digests(sessions, NinoDigests(settings.nino_digest_keys))
        finally:
            await engine.dispose()

    typer.echo(json.dumps({"rekeyed": asyncio.run(run())}))


jobs_cli = typer.Typer(
    help="The daily jobs (JFS 3.40 auto DNA, JFS 5.08 auto end, JFS 1.33 retention)."
)
cli.add_typer(jobs_cli, name="jobs")


@jobs_cli.command("run")
def run_job_command(
    job: Annotated[str, typer.Argument(help="auto-dna, auto-end or retention")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="YYYY-MM-DD; today by default, never later.")
    ] = None,
) -> None:
    """Run one job now, for a cron job or a Kubernetes CronJob. Safe to run concurrently."""
    from datetime import date

    from app.core.database import create_engine, create_session_factory
    from app.jobs.service import Job, Trigger, run_job
    from app.sandbox.service import read_clock

    try:
        chosen = Job(job)
    except ValueError as error:
        raise typer.BadParameter("job must be auto-dna, auto-end or retention") from error
    settings = Settings()

    async def run() -> str:
        engine = create_engine(settings)
        sessions = create_session_factory(engine)
        try:
            async with sessions() as session:
                clock = await read_clock(session, sandbox=settings.sandbox)
            day = date.fromisoformat(as_of) if as_of else clock.today
            if day > clock.today:
                raise typer.BadParameter("--as-of may not be after today")
            result = await run_job(sessions, chosen, clock=clock, as_of=day, trigger=Trigger.cli)
        finally:
            await engine.dispose()
        return json.dumps(
            {
                "job": str(result.job),
                "as_of": result.as_of.isoformat(),
                "changed": result.changed,
                "batches": result.batches,
                "duration_ms": result.duration_ms,
                "run_id": result.run_id,
            }
        )

    typer.echo(asyncio.run(run()))


@cli.command()
def worker() -> None:
    """Deliver webhooks until stopped, apart from the API (run it with PRAP_WEBHOOKS=0 on
    the API replicas, or beside them: replicas and workers deliver each delivery once)."""
    from app.core.database import create_engine, create_session_factory
    from app.webhooks.worker import worker_loop

    settings = Settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await worker_loop(create_session_factory(engine), settings)
        finally:
            await engine.dispose()

    asyncio.run(run())


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
