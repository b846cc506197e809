"""Driving the pages in Debian's Chromium through Playwright: the running app, the
browser, screenshots and the accessibility check. Shared by the browser tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from api.app import create_app
from core.i18n import translate
from core.runtime import Runtime

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections (component
# updates, safe browsing) are refused on a closed network and slow every start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
PHONE: ViewportSize = {"width": 390, "height": 844}  # a common phone's CSS pixels
LAPTOP: ViewportSize = {"width": 1280, "height": 800}
LOCALES = {"fr": "fr-FR", "en": "en-GB"}
SERIOUS = ("serious", "critical")


@dataclass
class RunningApp:
    base_url: str
    runtime: Runtime


@pytest.fixture
def running_app(runtime: Runtime) -> Iterator[RunningApp]:
    """The whole app (pages, API, in-process background work) under uvicorn, in a thread,
    on a free loopback port."""
    app = create_app(runtime)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-pages", daemon=True)
    thread.start()
    try:
        # Inside the try: an app that never answers is stopped too, so its background
        # work cannot outlive the test's runtime.
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the app did not start")
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        base_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{base_url}/healthz"), timeout_s=60, what="the app's /healthz")
        yield RunningApp(base_url, runtime)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        if app.state.runner is not None:
            app.state.runner.stop()  # whatever happened to uvicorn, no timer survives the test


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.TransportError:
        return False  # busy machine: ask again


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(
            "/usr/bin/chromium is missing: apt-get install chromium chromium-driver "
            "(./dev test does it)"
        )
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    browser = playwright_session.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class Person:
    """One person at one browser: a role, a language, a screen."""

    name: str
    page: Page
    context: BrowserContext
    language: str
    base_url: str
    shots: Path
    problems: list[str] = field(default_factory=list)

    def t(self, message: str, **values: Any) -> str:
        """What the page says for ``message`` in this person's language."""
        return translate(message, self.language, **values)

    def go(self, path: str) -> Page:
        self.page.goto(self.base_url + path)
        return self.page

    def sign_in(self, username: str, password: str) -> None:
        page = self.go("/login")
        assert page.locator("html").get_attribute("lang") == self.language
        page.fill("#f-username", username)
        page.fill("#f-password", password)
        page.get_by_role("button", name=self.t("Sign in")).click()
        page.wait_for_url(lambda url: "/login" not in url)

    def shot(self, step: str) -> None:
        self.shots.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(self.shots / f"{step}-{self.name}.png"), full_page=True)


def open_person(
    browser: Browser, app: RunningApp, *, name: str, language: str, phone: bool
) -> Person:
    context = browser.new_context(
        viewport=PHONE if phone else LAPTOP,
        locale=LOCALES[language],
        accept_downloads=True,
        is_mobile=phone,
        has_touch=phone,
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    person = Person(name, page, context, language, app.base_url, SCREENSHOTS / language)
    # Anything the browser refuses (a CSP violation, a missing file) is a failure; not
    # the map tiles (refused on purpose) nor a form refused with 422 (shown with its errors).
    expected = ("ERR_CONNECTION_REFUSED", "status of 422")
    page.on(
        "console",
        lambda message: (
            person.problems.append(f"{page.url}: {message.text}")
            if message.type == "error" and not any(e in message.text for e in expected)
            else None
        ),
    )
    page.on("pageerror", lambda error: person.problems.append(f"{page.url}: {error}"))
    return person


@pytest.fixture
def people(browser: Browser, running_app: RunningApp) -> Iterator[Any]:
    """``people(name, language, phone=...)`` opens a person's browser; all are closed before
    the app stops, so no connection outlives it."""
    opened: list[Person] = []

    def open_one(name: str, language: str, *, phone: bool) -> Person:
        person = open_person(browser, running_app, name=name, language=language, phone=phone)
        opened.append(person)
        return person

    yield open_one
    for person in opened:
        person.context.close()


def axe_violations(person: Person) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations of the page as it is now."""
    page = person.page
    page.add_script_tag(url=person.base_url + "/static/vendor/axe-core/axe.min.js")
    result: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "page": page.url,
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [node["target"] for node in violation["nodes"]][:5],
        }
        for violation in result["violations"]
        if violation["impact"] in SERIOUS
    ]


def write_report(name: str, content: object) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False))
    return path


def wait_for(check: Any, *, timeout_s: float, what: str, every_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
