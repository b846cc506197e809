"""Live regions: parts of a page that htmx reloads every few seconds.

Each region carries the digest of what it shows in its polling URL; when nothing
changed the server answers 204 and htmx leaves the region alone, so a person
tabbing through its buttons keeps their focus and a screen reader is not told the
same thing again.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from api.web.templating import render_text


def live_block(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    element_id: str,
    url: str,
    params: dict[str, str] | None = None,
    every_s: float = 3.0,
) -> tuple[Markup, str]:
    """The region's HTML (wrapper included) and its digest."""
    inner = render_text(request, template, context)
    version = hashlib.sha256(inner.encode()).hexdigest()[:16]
    query = urlencode({**(params or {}), "v": version})
    wrapper = Markup(
        '<div id="{}" class="live" hx-get="{}?{}" hx-trigger="every {}s" hx-swap="outerHTML">'
    ).format(element_id, url, query, f"{every_s:g}")
    # ``inner`` is the output of an autoescaping template: already safe HTML.
    return wrapper + Markup(inner) + Markup("</div>"), version  # noqa: S704


def live_response(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    element_id: str,
    url: str,
    params: dict[str, str] | None = None,
    every_s: float = 3.0,
    status_code: int = 200,
    notice: tuple[str, str] | None = None,
) -> Response:
    """The region for a poll (204 when unchanged) or after an action, with an optional
    ``notice`` (level, translated text) swapped into the page's message area."""
    html, version = live_block(
        request,
        template,
        context,
        element_id=element_id,
        url=url,
        params=params,
        every_s=every_s,
    )
    if request.method == "GET" and request.query_params.get("v") == version:
        return Response(status_code=204)
    if notice is not None:
        level, text = notice
        html += Markup(
            '<div id="flash" class="flash" role="status" aria-live="polite" hx-swap-oob="true">'
            '<p class="message {}">{}</p></div>'
        ).format(level, text)
    return HTMLResponse(str(html), status_code=status_code)
