"""The printer endpoints under test: each contract test runs against both."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from printers.drivers import OctoPrintDriver
from tests.printers.support import Endpoint


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(
    params=[
        pytest.param("octoprint", marks=pytest.mark.octoprint),
        "simulator",
    ]
)
def endpoint(request: pytest.FixtureRequest) -> Endpoint:
    """An idle, connected printer with no files: a real OctoPrint, then the simulator."""
    if request.param == "octoprint":
        server = request.getfixturevalue("octoprint_server")
        return Endpoint("octoprint", server.base_url, server.api_key)
    printer = request.getfixturevalue("simulated_printer")
    return Endpoint("simulator", printer.base_url, printer.api_key)


@pytest.fixture
async def driver(endpoint: Endpoint) -> AsyncIterator[OctoPrintDriver]:
    async with endpoint.driver() as driver:
        yield driver
