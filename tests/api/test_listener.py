"""``distrifab serve --workers N`` listens on a socket whose connections have Nagle off."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import httpx
import pytest

from api.listener import NodelayConfig, tcp_listener
from core.errors import Unavailable
from tests.fixtures.services import Processes


async def _nodelay_of_accepted(listener: socket.socket) -> int:
    """Serve ``listener`` with asyncio as uvicorn's processes do, connect, and read the
    accepted connection's TCP_NODELAY."""
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Report(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Report, sock=listener)
    try:
        port = listener.getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await asyncio.wait_for(accepted, timeout=10)
        writer.close()
        return value
    finally:
        server.close()


def test_accepted_connections_have_nagle_off() -> None:
    listener = tcp_listener("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP
    assert asyncio.run(_nodelay_of_accepted(listener)) == 1


def test_the_configuration_uvicorn_spawns_binds_the_same_way() -> None:
    config = NodelayConfig("api.asgi:create", factory=True, host="127.0.0.1", port=0, workers=2)
    listener = config.bind_socket()
    assert listener.get_inheritable()
    assert asyncio.run(_nodelay_of_accepted(listener)) == 1


def test_a_port_in_use_is_one_clear_error() -> None:
    taken = tcp_listener("127.0.0.1", 0)
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(Unavailable, match=f"cannot listen on 127.0.0.1:{port}"):
            tcp_listener("127.0.0.1", port)
    finally:
        taken.close()


def test_several_api_processes_serve_on_one_port(
    process_env: Callable[..., dict[str, str]], distrifab_processes: Processes
) -> None:
    env = process_env()
    api = distrifab_processes.api(env, workers=2)
    with httpx.Client(base_url=api.base_url, timeout=30) as client:
        for _ in range(20):  # kept alive: the requests after the first reuse the connection
            answer = client.get("/healthz")
            assert answer.status_code == 200
            assert answer.headers["server-timing"].startswith("app;dur=")
