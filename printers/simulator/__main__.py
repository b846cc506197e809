"""``python -m printers.simulator``: serve a simulated fleet until interrupted.

Prints one JSON line per printer (number, base_url, api_key) before serving, so a demo
script can register them; ``--time-scale 60`` runs an hour of printing in a minute.
"""

from __future__ import annotations

import argparse
import json
import sys

from printers.simulator.fleet import DEMO_PROFILES, SimulatedFleet, make_server
from printers.simulator.printer import DEFAULT_PROFILE


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m printers.simulator", description=__doc__)
    parser.add_argument("--count", type=int, default=10, help="printers to simulate")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--seed", default="distrifab", help="API keys derive from it")
    parser.add_argument(
        "--time-scale", type=float, default=20.0, help="simulated seconds per real second"
    )
    parser.add_argument(
        "--demo-profiles", action="store_true", help="mix a few common printer models"
    )
    parser.add_argument("--quiet", action="store_true", help="do not list the printers")
    args = parser.parse_args(argv)

    fleet = SimulatedFleet(
        args.count,
        seed=args.seed,
        time_scale=args.time_scale,
        profiles=DEMO_PROFILES if args.demo_profiles else (DEFAULT_PROFILE,),
    )
    if not args.quiet:
        host = "127.0.0.1" if args.host in {"0.0.0.0", "::"} else args.host  # noqa: S104
        for number, printer in fleet.printers.items():
            line = {
                "number": number,
                "base_url": f"http://{host}:{args.port}/printers/{number}",
                "api_key": printer.api_key,
                "profile": printer.profile.name,
            }
            sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    make_server(fleet, host=args.host, port=args.port).run()


if __name__ == "__main__":
    main()
