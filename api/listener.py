"""The listening socket of ``distrifab serve --workers N``, with Nagle's algorithm off.

With several API processes, uvicorn binds the socket itself and hands it to each process.
It creates it as ``socket.socket(family)``, whose protocol number reads 0; connections
accepted on it read 0 too, and asyncio only sets ``TCP_NODELAY`` on sockets that say
``IPPROTO_TCP`` (uvicorn issue #3149, open in the version we use). Without it, the body
of every answer waited for the client's delayed acknowledgement of its headers: the load
benchmark measured 40-45 ms added to every request, the same on ``/healthz`` as on a
queue listing, against 1-3 ms with one process (which lets asyncio bind from
``getaddrinfo``, protocol 6). Here the socket is bound with its real protocol.
"""

from __future__ import annotations

import socket

import uvicorn

from core.errors import Unavailable
from core.i18n import _


def tcp_listener(host: str, port: int) -> socket.socket:
    """A bound TCP socket whose accepted connections asyncio recognises as TCP."""
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise Unavailable(
            _("cannot listen on {host}:{port}: {reason}", host=host, port=port, reason=exc.strerror)
        ) from exc
    sock.set_inheritable(True)  # the API processes are spawned with it
    return sock


class NodelayConfig(uvicorn.Config):
    """uvicorn's configuration, binding TCP addresses with :func:`tcp_listener`."""

    def bind_socket(self) -> socket.socket:
        if self.uds is not None or self.fd is not None:
            return super().bind_socket()
        return tcp_listener(self.host, self.port)


def serve_processes(app: str, *, host: str, port: int, workers: int, log_level: str) -> None:
    """What ``uvicorn.run(app, workers=N)`` does, with the listener above."""
    from uvicorn.supervisors import Multiprocess

    config = NodelayConfig(
        app, factory=True, host=host, port=port, workers=workers, log_level=log_level
    )
    sock = config.bind_socket()
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
