"""The ``distrifab`` command line."""

from __future__ import annotations

import getpass
import importlib
import sys
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from pydantic import ValidationError
from rich.console import Console

from core.errors import DomainError
from core.i18n import _, language_from_environment, set_language

if TYPE_CHECKING:
    from core.runtime import Runtime

app = typer.Typer(
    name="distrifab",
    help="Coordination engine for distributed manufacturing (needs, slicing, planning, printers, quality).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

# Sub-commands that live with their domain's CLI code; each module has register(app).
COMMAND_MODULES = (
    "api.commands.slice",
    "api.commands.plan",
    "api.commands.demo",
    "api.commands.serve",
    "api.commands.quality",
    "api.commands.backup",
    "api.commands.parts",
)


def _runtime() -> Runtime:
    from core.runtime import get_runtime  # imported lazily: --help stays fast

    return get_runtime()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest revision, and seed reference data."""
    from api.bootstrap import prepare_database

    runtime = _runtime()
    revision = prepare_database(runtime)
    out.print(
        _(
            "Database at revision {revision}: {url}",
            revision=revision,
            url=runtime.db.engine.url.render_as_string(hide_password=True),
        )
    )


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name")],
    role: Annotated[str, typer.Option(help="coordinator, operator, auditor or admin")] = "admin",
    password: Annotated[str | None, typer.Option(help="Asked for when omitted")] = None,
    site: Annotated[
        list[str] | None, typer.Option(help="Site name or id an operator runs (repeat)")
    ] = None,
    language: Annotated[str | None, typer.Option(help="fr or en")] = None,
) -> None:
    """Create a user (the first admin, typically)."""
    from sqlalchemy import select

    from api.bootstrap import prepare_database
    from core import audit
    from core.identity import Actor, Role, create_user
    from printers.models import Site

    try:
        chosen_role = Role(role)
    except ValueError:
        raise DomainError(
            _("unknown role {role}; use coordinator, operator, auditor or admin", role=role)
        ) from None
    if password is None:
        password = getpass.getpass(_("Password for {username}: ", username=username))
    runtime = _runtime()
    prepare_database(runtime)
    with runtime.db.session() as session:
        sites = []
        for ref in site or []:
            found = session.scalar(select(Site).where(Site.name == ref))
            if found is None:
                try:
                    found = session.get(Site, UUID(ref))
                except ValueError:
                    found = None
            if found is None:
                raise DomainError(_("no site named {site}", site=ref))
            sites.append(found)
        user = create_user(
            session,
            username=username,
            password=password,
            role=chosen_role,
            language=language,
            sites=sites,
        )
        audit.record(
            session,
            actor=Actor.system("cli"),
            action="user.created",
            entity_type="user",
            entity_id=user.id,
            data={"username": user.username, "role": user.role},
        )
        session.commit()
    out.print(
        _(
            "User {username} created with the role {role}.",
            username=username,
            role=chosen_role.value,
        )
    )


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit trail's hash chain; say where it was edited, cut or reordered."""
    from core.audit import verify_chain

    runtime = _runtime()
    with runtime.db.session() as session:
        report = verify_chain(session)
    if report.ok:
        out.print(_("Audit trail intact: {count} entries verified.", count=report.entries))
        return
    for problem in report.problems:
        err.print(
            _(
                "entry {seq}: {detail}",
                seq=problem.seq if problem.seq is not None else "-",
                detail=problem.detail,
            )
        )
    raise typer.Exit(code=3)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes")] = 2,
    loglevel: Annotated[str, typer.Option()] = "info",
    niceness: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=19,
            help="Lower CPU priority, so that people's requests go first on a busy host "
            "[default: DISTRIFAB_WORKER_NICENESS, 5]",
        ),
    ] = None,
) -> None:
    """Run a Celery worker (distributed mode: DISTRIFAB_REDIS_URL must be set)."""
    from core.celery_app import configure_celery
    from core.logs import configure_logging
    from scheduler.instances.parallel import lower_priority

    runtime = _runtime()
    configure_logging(json_output=True)
    steps = runtime.settings.worker_niceness if niceness is None else niceness
    if steps > 0:
        lower_priority(steps)
    celery = configure_celery(runtime.settings)
    celery.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency}",
            "-Q",
            runtime.settings.celery_queue,
        ]
    )


@app.command()
def beat(loglevel: Annotated[str, typer.Option()] = "info") -> None:
    """Run the Celery beat scheduler (one per deployment): polling, dispatch and planning sweeps."""
    from core.celery_app import configure_celery
    from core.logs import configure_logging

    runtime = _runtime()
    configure_logging(json_output=True)
    celery = configure_celery(runtime.settings)
    schedule = runtime.settings.data_dir / "celerybeat-schedule"
    celery.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule}"])


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # optional command not installed in this build
            raise
        module.register(app)


def main() -> None:
    set_language(language_from_environment())
    _register_commands()
    try:
        app()
    except DomainError as exc:
        err.print(f"distrifab: {exc}", markup=False, soft_wrap=True)
        sys.exit(2)
    except ValidationError as exc:  # settings from the environment
        first = exc.errors()[0]
        err.print(f"distrifab: {first.get('msg', exc)}", markup=False, soft_wrap=True)
        sys.exit(2)
    except ValueError as exc:
        err.print(f"distrifab: {exc}", markup=False, soft_wrap=True)
        sys.exit(2)
