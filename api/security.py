"""Login rate limiting and the security headers of every answer.

Both are one pure ASGI middleware installed by :func:`install`, so neither the API's
``POST /api/v1/auth/token`` nor the pages' ``POST /login`` can forget them, and a new
page or route gets the headers without doing anything.

Login limiting counts *failed* attempts in fixed windows, per username and per client
address, and refuses further attempts with 429 (and ``Retry-After``) before any password
is checked, so a locked account costs no argon2 work either. The per-username limit stops
guessing one account from many addresses; the per-address limit, higher because a fablab
puts many people behind one NAT address, stops trying many accounts from one place. A
success clears the username's counter. Counters live in Redis when distributed (every
API process shares them) and in memory when embedded; if Redis cannot be reached they
fall back to memory in that process rather than refusing every login during an outage.

The client address is the ASGI ``client``: behind a reverse proxy uvicorn rewrites it
from ``X-Forwarded-For`` only for the proxies it trusts (``--forwarded-allow-ips``).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

import structlog
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.i18n import _
from core.runtime import Runtime

log = structlog.get_logger()

# Measured choices rather than guesses: argon2 at production cost takes ~60 ms, so an
# attacker at full speed would try ~1000 passwords in a minute; 5 per 15 min per account
# is OWASP's usual lockout order, and 50 per address leaves room for a classroom's typos.
USERNAME_FAILURES = 5
ADDRESS_FAILURES = 50
WINDOW_S = 15 * 60
# A login body is a username and a password; anything bigger is not read for limiting.
MAX_LOGIN_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class LoginRoute:
    """How to read the username of one login form and tell success from failure."""

    method: str
    path: str
    form: bool  # urlencoded form (pages) or JSON (API)
    success: frozenset[int]
    failure: frozenset[int]


LOGIN_ROUTES = (
    # The API answers 201 with a token, 401 for a wrong username or password.
    LoginRoute("POST", "/api/v1/auth/token", False, frozenset({201}), frozenset({401})),
    # The page redirects (303) when signed in and shows the form again (422) otherwise;
    # a refused CSRF token (403) checked no password and does not count.
    LoginRoute("POST", "/login", True, frozenset({303}), frozenset({422})),
)


class CounterStore(Protocol):
    async def count(self, key: str) -> tuple[int, float]:
        """Failures counted under ``key`` in the current window, and seconds left in it."""
        ...

    async def add(self, key: str, window_s: float) -> None: ...

    async def clear(self, key: str) -> None: ...


class MemoryCounters:
    """Fixed-window counters in this process (embedded mode, and Redis's fallback)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, float]] = {}  # key -> (count, window end)

    async def count(self, key: str) -> tuple[int, float]:
        now = self._clock()
        with self._lock:
            count, until = self._windows.get(key, (0, now))
            if until <= now:
                self._windows.pop(key, None)
                return 0, 0.0
            return count, until - now

    async def add(self, key: str, window_s: float) -> None:
        now = self._clock()
        with self._lock:
            count, until = self._windows.get(key, (0, now))
            if until <= now:
                count, until = 0, now + window_s
            self._windows[key] = (count + 1, until)
            if len(self._windows) > 100_000:
                # A flood of distinct usernames must not grow memory without bound.
                for stale in [k for k, (_c, end) in self._windows.items() if end <= now]:
                    del self._windows[stale]

    async def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)


class RedisCounters:
    """The same counters in Redis, shared by every API process of a deployment."""

    def __init__(self, url: str, *, prefix: str) -> None:
        self._url = url
        self._prefix = prefix
        self._fallback = MemoryCounters()
        self._down_logged = False

    async def _guarded(self, call: Callable[[Any], Awaitable[Any]]) -> Any:
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        # A connection per login attempt: logins are rare, and a client kept between
        # requests would be bound to one event loop (and leak when the app stops).
        try:
            async with Redis.from_url(
                self._url, socket_timeout=1.0, socket_connect_timeout=1.0
            ) as redis:
                result = await call(redis)
        except (RedisError, OSError) as exc:
            if not self._down_logged:
                log.warning("login_limits_in_memory", reason=str(exc))
                self._down_logged = True
            return None
        self._down_logged = False
        return result

    async def count(self, key: str) -> tuple[int, float]:
        name = self._prefix + key

        async def read(redis: Any) -> tuple[int, float]:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.get(name)
                pipe.pttl(name)
                raw, ttl_ms = await pipe.execute()
            return int(raw or 0), max(0.0, (ttl_ms or 0) / 1000)

        found: tuple[int, float] | None = await self._guarded(read)
        if found is None:
            return await self._fallback.count(key)
        in_memory = await self._fallback.count(key)
        return max(found, in_memory)

    async def add(self, key: str, window_s: float) -> None:
        name = self._prefix + key

        async def bump(redis: Any) -> bool:
            async with redis.pipeline(transaction=True) as pipe:
                # NX: the window starts at the first failure and is not stretched by later ones.
                pipe.set(name, 0, ex=int(window_s), nx=True)
                pipe.incr(name)
                await pipe.execute()
            return True

        if await self._guarded(bump) is None:
            await self._fallback.add(key, window_s)

    async def clear(self, key: str) -> None:
        name = self._prefix + key

        async def delete(redis: Any) -> bool:
            await redis.delete(name)
            return True

        await self._guarded(delete)
        await self._fallback.clear(key)


def _digest(value: str) -> str:
    # Keys hold a hash: the store never lists the usernames people typed (often passwords).
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class LoginLimiter:
    def __init__(
        self,
        store: CounterStore,
        *,
        username_failures: int = USERNAME_FAILURES,
        address_failures: int = ADDRESS_FAILURES,
        window_s: float = WINDOW_S,
    ) -> None:
        self.store = store
        self.username_failures = username_failures
        self.address_failures = address_failures
        self.window_s = window_s

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return "user:" + _digest(username.strip().lower()), "addr:" + _digest(address)

    async def retry_after_s(self, username: str, address: str) -> float:
        """0 when an attempt may go ahead, else how long until the window ends."""
        user_key, addr_key = self._keys(username, address)
        user_count, user_left = await self.store.count(user_key)
        addr_count, addr_left = await self.store.count(addr_key)
        waits = []
        if user_count >= self.username_failures:
            waits.append(user_left)
        if addr_count >= self.address_failures:
            waits.append(addr_left)
        return max(waits) if waits else 0.0

    async def failed(self, username: str, address: str) -> None:
        user_key, addr_key = self._keys(username, address)
        await self.store.add(user_key, self.window_s)
        await self.store.add(addr_key, self.window_s)

    async def succeeded(self, username: str) -> None:
        user_key, _addr = self._keys(username, "")
        await self.store.clear(user_key)


def make_limiter(runtime: Runtime) -> LoginLimiter:
    settings = runtime.settings
    if settings.redis_url:
        # The queue name tells deployments sharing one Redis apart.
        prefix = f"distrifab:{settings.celery_queue}:login:"
        return LoginLimiter(RedisCounters(settings.redis_url, prefix=prefix))
    return LoginLimiter(MemoryCounters())


# --- headers -------------------------------------------------------------------------

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI (the API docs) loads its script and style from jsDelivr, as FastAPI serves it.
DOCS_ORIGIN = "https://cdn.jsdelivr.net"
HSTS = "max-age=63072000; includeSubDomains"
COMMON_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    # Nothing in distrifab uses these; a script injected anyway gets none of them.
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)


def _inline_script_hashes(html: bytes) -> list[str]:
    """CSP hashes of the inline scripts of a page we did not write (Swagger UI), so that it
    runs without allowing inline script in general."""
    import base64
    import re

    hashes = []
    for match in re.finditer(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, re.S):
        digest = hashlib.sha256(match.group(1)).digest()
        hashes.append("'sha256-" + base64.b64encode(digest).decode() + "'")
    return hashes


def _docs_csp(html: bytes) -> str:
    scripts = " ".join([DOCS_ORIGIN, *_inline_script_hashes(html)])
    return (
        f"default-src 'none'; script-src {scripts}; style-src {DOCS_ORIGIN}; "
        f"img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def secure_headers(
    scope: Scope, headers: list[tuple[bytes, bytes]], body: bytes | None = None
) -> list[tuple[bytes, bytes]]:
    """The answer's headers with the security ones added (those already set are kept)."""
    present = {key.lower() for key, _value in headers}
    extra = [(k, v) for k, v in COMMON_HEADERS if k not in present]
    path: str = scope.get("path", "")
    if scope.get("scheme") == "https" and b"strict-transport-security" not in present:
        extra.append((b"strict-transport-security", HSTS.encode()))
    if b"content-security-policy" not in present:
        content_type = _header(headers, b"content-type") or b""
        if body is not None and content_type.startswith(b"text/html"):
            extra.append((b"content-security-policy", _docs_csp(body).encode()))
        elif not content_type.startswith(b"text/html") and not path.startswith("/static/"):
            extra.append((b"content-security-policy", API_CSP.encode()))
    if path.startswith("/api/") and b"cache-control" not in present:
        # Answers carry tokens and operational records: never kept by a shared cache.
        extra.append((b"cache-control", b"no-store"))
    return [*headers, *extra]


# --- the middleware --------------------------------------------------------------------


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _username_from(body: bytes, *, form: bool) -> str:
    if form:
        values = parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
        return (values.get("username") or [""])[0][:64]
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    username = parsed.get("username") if isinstance(parsed, dict) else None
    return username[:64] if isinstance(username, str) else ""


def _throttled(scope: Scope, retry_after_s: float, route: LoginRoute) -> Response:
    seconds = max(1, int(retry_after_s + 0.999))
    minutes = max(1, (seconds + 59) // 60)
    headers = {"Retry-After": str(seconds)}
    request = Request(scope)
    # The request-context middleware around this one has set the reader's language.
    detail = _("Too many failed sign-in attempts; try again in {minutes} min.", minutes=minutes)
    title = _("Too many attempts")
    if route.form:
        from api.web.routing import error_page

        response = error_page(request, status=429, title=title, detail=detail)
        response.headers.update(headers)
        return response
    body = {
        "type": "https://distrifab.org/problems/too_many_attempts",
        "title": title,
        "status": 429,
        "detail": detail,
        "instance": "urn:request:" + getattr(request.state, "request_id", "-"),
    }
    return Response(
        json.dumps(body), status_code=429, media_type="application/problem+json", headers=headers
    )


# Multipart framing and the form fields around the largest accepted file.
BODY_SLACK_BYTES = 1 << 20


class BodyTooLarge(Exception):
    pass


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, *, limiter: LoginLimiter, max_body_bytes: int) -> None:
        self.app = app
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = next(
            (
                r
                for r in LOGIN_ROUTES
                if r.method == scope["method"] and r.path == scope.get("path")
            ),
            None,
        )
        if route is not None:
            await self._login(route, scope, receive, send)
            return
        # Starlette spools a whole multipart upload to disk before any route sees it: a body
        # bigger than the largest file accepted is refused here, before it fills the disk.
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        headed = self._with_headers(scope, send)

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await headed(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:  # a body without Content-Length (chunked) that kept coming
                await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit_mb = max(1, (self.max_body_bytes - BODY_SLACK_BYTES) // 1_000_000)
        body = {
            "type": "https://distrifab.org/problems/too_large",
            "title": _("Too large"),
            "status": 413,
            "detail": f"the request is larger than the {limit_mb} MB upload limit",
            "instance": "urn:request:-",
        }
        response = Response(
            json.dumps(body),
            status_code=413,
            media_type="application/problem+json",
            headers={"Connection": "close"},
        )
        await response(scope, receive, self._with_headers(scope, send))

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        docs = scope.get("path", "").startswith("/api/v1/docs") or scope.get("path", "").startswith(
            "/docs/"
        )
        held: list[Message] = []

        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start" and not docs:
                message["headers"] = secure_headers(scope, list(message.get("headers", [])))
                await send(message)
                return
            if not docs:
                await send(message)
                return
            # The docs page is small and its CSP depends on its inline scripts: hold it whole.
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                start, *chunks = held
                body = b"".join(m.get("body", b"") for m in chunks)
                start["headers"] = secure_headers(scope, list(start.get("headers", [])), body)
                await send(start)
                await send({"type": "http.response.body", "body": body})

        return sender

    async def _login(self, route: LoginRoute, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_LOGIN_BODY_BYTES:
                response = Response(status_code=413)
                await response(scope, receive, self._with_headers(scope, send))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        username = _username_from(body, form=route.form)
        address = _client_address(scope)
        wait_s = await self.limiter.retry_after_s(username, address)
        if wait_s > 0:
            log.warning("login_throttled", address=address, retry_after_s=round(wait_s))
            response = _throttled(scope, wait_s, route)
            await response(scope, receive, self._with_headers(scope, send))
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status: list[int] = []
        headed = self._with_headers(scope, send)

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await headed(message)

        await self.app(scope, replay, watch)
        if status and status[0] in route.failure:
            await self.limiter.failed(username, address)
        elif status and status[0] in route.success:
            await self.limiter.succeeded(username)


def install(app: FastAPI, runtime: Runtime) -> LoginLimiter:
    """Add the middleware (call before the request-context middleware, which then wraps it)."""
    limiter = make_limiter(runtime)
    app.state.login_limiter = limiter
    app.add_middleware(
        SecurityMiddleware,
        limiter=limiter,
        max_body_bytes=runtime.settings.max_upload_bytes + BODY_SLACK_BYTES,
    )
    return limiter
