"""``distrifab serve``: the API and web pages, with in-process background work when embedded."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated

import typer
from rich.console import Console

from core.i18n import _

out = Console(highlight=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
        demo: Annotated[
            bool, typer.Option(help="Simulated printers and the Oise demo network")
        ] = False,
        simulator_port: Annotated[
            int, typer.Option(help="Where the demo's simulated printers answer")
        ] = 8500,
        time_scale: Annotated[float, typer.Option(help="Simulated printing speed-up")] = 120.0,
        workers: Annotated[int, typer.Option(help="API processes (distributed mode only)")] = 1,
    ) -> None:
        """Serve distrifab on http://HOST:PORT (API under /api/v1, docs under /api/v1/docs)."""
        import uvicorn

        from api.app import create_app
        from api.bootstrap import prepare_database
        from api.demo import (
            DEMO_PASSWORD,
            DEMO_PRINTER_COUNT,
            DEMO_SEED,
            build_demo_network,
            has_data,
        )
        from api.listener import serve_processes
        from core.logs import configure_logging
        from core.runtime import get_runtime
        from printers.simulator.fleet import DEMO_PROFILES, SimulatedFleet, serve_in_thread

        runtime = get_runtime()
        configure_logging(json_output=not runtime.settings.embedded)
        if workers > 1 and runtime.settings.embedded:
            raise typer.BadParameter(
                _("several API processes need the distributed mode (DISTRIFAB_REDIS_URL)")
            )
        revision = prepare_database(runtime)
        out.print(_("Database ready (revision {revision}).", revision=revision))
        with ExitStack() as stack:
            if demo:
                fleet = SimulatedFleet(
                    DEMO_PRINTER_COUNT,
                    seed=DEMO_SEED,
                    time_scale=time_scale,
                    profiles=DEMO_PROFILES,
                )
                simulator = stack.enter_context(serve_in_thread(fleet, port=simulator_port))
                with runtime.db.session() as session:
                    empty = not has_data(session)
                if empty:
                    out.print(
                        _(
                            "Creating the Oise demo network (slicing the demo parts takes a few seconds)..."
                        )
                    )
                    build_demo_network(runtime, simulator)
                out.print(
                    _(
                        "Demo users: admin, coordinator, auditor, operator-hermitage, operator-utc, operator-venette; password {password}",
                        password=DEMO_PASSWORD,
                    )
                )
            out.print(_("distrifab is serving on http://{host}:{port}", host=host, port=port))
            if workers > 1:
                serve_processes(
                    "api.asgi:create", host=host, port=port, workers=workers, log_level="warning"
                )
            else:
                uvicorn.run(create_app(runtime), host=host, port=port, log_level="warning")
