"""The pages through a test client: sign-in, CSRF, who sees what, forms that keep what
was typed, languages, live regions. The browser walk is in test_browser.py."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from sqlalchemy import func, select

from core.clock import utcnow
from core.identity import User
from quality.models import WasteEntry
from scheduler.models import DeliveryPoint, Need
from tests.web.conftest import Pages, csrf_of, planned_job, post_form


def test_signing_in_and_out(pages: Pages) -> None:
    client = pages.client()
    anonymous = client.get("/needs", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/needs"

    page = client.get("/login?next=/needs")
    refused = client.post(
        "/login",
        data={
            "username": pages.usernames["coordinator"],
            "password": "not-the-password",
            "next": "/needs",
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert refused.status_code == 422
    assert "Wrong username or password." in refused.text
    assert f'value="{pages.usernames["coordinator"]}"' in refused.text  # kept
    assert "not-the-password" not in refused.text  # never echoed

    signed_in = client.post(
        "/login",
        data={
            "username": pages.usernames["coordinator"],
            "password": "password-123",
            "next": "/needs",
            "csrf_token": csrf_of(refused.text),
        },
        follow_redirects=False,
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/needs"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert client.get("/needs").status_code == 200

    # Signing out revokes the token: a copy of the cookie is worthless afterwards.
    stolen = dict(client.cookies)
    out = post_form(client, "/needs", "/logout", {})
    assert out.status_code == 303
    thief = pages.client()
    thief.cookies.update(stolen)
    assert thief.get("/needs", follow_redirects=False).status_code == 303


def test_next_never_leaves_the_site(pages: Pages) -> None:
    client = pages.client()
    response = client.post(
        "/login",
        data={
            "username": pages.usernames["auditor"],
            "password": "password-123",
            "next": "//evil.example/steal",
            "csrf_token": csrf_of(client.get("/login").text),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/audit"


def test_every_state_change_needs_the_csrf_token(pages: Pages) -> None:
    client = pages.signed_in("coordinator")
    form = {"part_id": "x", "quantity": "3"}
    assert client.post("/needs/new", data=form).status_code == 403
    assert client.post("/needs/new", data={**form, "csrf_token": "forged"}).status_code == 403
    assert client.post("/plan/replan").status_code == 403
    assert client.post("/logout").status_code == 403
    token = csrf_of(client.get("/needs").text)
    other_origin = client.post(
        "/plan/replan",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert other_origin.status_code == 403
    # htmx sends the token as a header: accepted.
    accepted = client.post("/plan/replan", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert accepted.status_code == 303
    # Still signed in: a refused form does not end the session.
    assert client.get("/needs").status_code == 200


def test_a_token_from_another_session_is_refused(pages: Pages) -> None:
    mine = pages.signed_in("coordinator")
    theirs = pages.signed_in("coordinator")
    their_token = csrf_of(theirs.get("/needs").text)
    assert mine.post("/plan/replan", data={"csrf_token": their_token}).status_code == 403


def test_an_operator_cannot_reach_another_sites_pages(pages: Pages) -> None:
    job = planned_job(pages, pages.other_site)
    other = pages.other_site.id
    client = pages.signed_in("operator")
    own = client.get(f"/sites/{pages.site.id}")
    assert own.status_code == 200
    for path in (
        f"/sites/{other}",
        f"/sites/{other}/live",
        f"/sites/{other}/waste",
        f"/sites/{other}/printers/new",
        f"/jobs/{job.id}/inspect",
        f"/jobs/{job.id}/refuse",
        f"/printers/{job.printer_id}/spool",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Atelier Venette" not in response.text, path
    token = csrf_of(own.text)
    for path in (f"/jobs/{job.id}/accept", f"/jobs/{job.id}/start"):
        assert client.post(path, data={"csrf_token": token}).status_code == 404, path
    waste = client.post(
        f"/sites/{other}/waste",
        data={"csrf_token": token, "kind": "purge", "material_key": "PLA", "mass_g": "12"},
    )
    assert waste.status_code == 404
    with pages.runtime.db.session() as session:
        assert session.scalar(select(func.count(WasteEntry.id))) == 0
    # The queue of its own site does not list the other site's job either.
    assert str(job.id) not in client.get(f"/sites/{pages.site.id}/live").text
    # The operator of that site sees it and can accept it.
    theirs = pages.signed_in("other_operator")
    assert f"job-{job.id}" in theirs.get(f"/sites/{other}").text


def test_roles_see_their_own_pages(pages: Pages) -> None:
    operator = pages.signed_in("operator")
    assert operator.get("/needs").status_code == 403
    assert operator.get("/audit").status_code == 403
    assert operator.get("/admin/users").status_code == 403
    auditor = pages.signed_in("auditor")
    assert auditor.get("/needs").status_code == 200  # reads
    assert auditor.get("/needs/new").status_code == 403  # does not post
    assert "Post a need" not in auditor.get("/needs").text
    coordinator = pages.signed_in("coordinator")
    assert coordinator.get("/audit").status_code == 403
    assert coordinator.get("/admin/users").status_code == 403
    admin = pages.signed_in("admin")
    for path in ("/needs", "/plan", "/sites", "/audit", "/admin/users", "/admin/catalog"):
        assert admin.get(path).status_code == 200, path


def test_a_refused_need_keeps_what_was_typed(pages: Pages) -> None:
    client = pages.signed_in("coordinator")
    refused = post_form(
        client,
        "/needs/new",
        "/needs/new",
        {
            "quantity": "douze",
            "due_at": "2026-12-01T18:00",
            "priority": "4",
            "note": "Pour le service de réanimation",
            "point_choice": "new",
            "point_name": "EHPAD Les Tilleuls",
            "point_address": "quelque part",
        },
    )
    assert refused.status_code == 422
    text = refused.text
    assert "Pour le service de réanimation" in text
    assert 'value="EHPAD Les Tilleuls"' in text
    assert 'value="douze"' in text
    assert re.search(r'id="f-quantity"[^>]*aria-invalid="true"', text)
    assert 'id="e-quantity"' in text
    assert "Enter a whole number." in text
    assert 'id="e-part_id"' in text
    assert 'id="e-point_address"' in text  # unknown offline, no coordinates
    assert '<option value="4" selected>' in text
    with pages.runtime.db.session() as session:
        assert session.scalar(select(func.count(Need.id))) == 0


def test_posting_a_need_with_a_new_point_located_offline(pages: Pages) -> None:
    from catalog.demo_parts import face_shield_headband
    from tests.factories import make_part

    with pages.runtime.db.session() as session:
        part, _version = make_part(pages.runtime, session, face_shield_headband(height_mm=0.6))
        part_id = part.id
    client = pages.signed_in("coordinator", language="fr")
    past = post_form(
        client,
        "/needs/new",
        "/needs/new",
        {
            "part_id": str(part_id),
            "quantity": "2",
            "due_at": "2020-04-01T18:00",
            "priority": "5",
            "point_choice": "new",
            "point_name": "CH Noyon",
            "point_address": "Avenue Alsace-Lorraine, 60400 Noyon",
        },
    )
    # The domain refuses the past deadline; the page says so next to it, in French.
    assert past.status_code == 422
    assert "l'échéance est déjà passée" in html.unescape(past.text)
    assert 'id="e-due_at"' in past.text
    # The point was created before the refusal: it is now the chosen one, not made twice.
    with pages.runtime.db.session() as session:
        point = session.scalars(select(DeliveryPoint)).one()
        assert (round(point.lat, 3), round(point.lon, 3)) == (49.582, 3.000)  # Noyon
    assert f'<option value="{point.id}" selected>' in past.text

    due = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    posted = post_form(
        client,
        "/needs/new",
        "/needs/new",
        {
            "part_id": str(part_id),
            "quantity": "2",
            "due_at": due,
            "priority": "5",
            "point_choice": "existing",
            "delivery_point_id": str(point.id),
        },
    )
    assert posted.status_code == 303
    with pages.runtime.db.session() as session:
        need = session.scalars(select(Need)).one()
    assert posted.headers["location"] == f"/needs/{need.id}"
    page = client.get(posted.headers["location"])
    assert "Besoin publié" in page.text
    assert client.get("/needs").text.count(f"/needs/{need.id}") == 1


def test_importing_needs_checks_the_whole_file_first(pages: Pages) -> None:
    from catalog.demo_parts import face_shield_headband
    from tests.factories import make_delivery_point, make_part

    with pages.runtime.db.session() as session:
        part, _version = make_part(pages.runtime, session, face_shield_headband(height_mm=0.6))
        point = make_delivery_point(session, name="CH Compiègne-Noyon")
        part_name = part.name
    client = pages.signed_in("coordinator")
    due = (utcnow() + timedelta(days=5)).strftime("%d/%m/%Y")
    bad = (
        "pièce;quantité;échéance;point de livraison;priorité\n"
        f"{part_name};10;{due};CH Compiègne-Noyon;5\n"
        f"Pièce inconnue;3;{due};CH Compiègne-Noyon;3\n"
        f"{part_name};zéro;demain;Nulle part;9\n"
    )
    refused = post_form(client, "/needs/import", "/needs/import", {"csv": bad})
    assert refused.status_code == 422
    assert "line 3: Unknown part: Pièce inconnue." in refused.text
    assert "line 4: The quantity must be a whole number above 0." in refused.text
    assert "line 4: Unknown delivery point: Nulle part." in refused.text
    assert "Pièce inconnue;3" in refused.text  # the text is kept for correcting
    with pages.runtime.db.session() as session:
        assert session.scalar(select(func.count(Need.id))) == 0

    good = (
        "part,quantity,due_at,delivery_point,priority\n"
        f"{part_name},10,{due},{point.name},5\n"
        f"{part_name},4,{due},{point.id},2\n"
    )
    imported = post_form(
        client,
        "/needs/import",
        "/needs/import",
        {},
        files={"file": ("needs.csv", good.encode(), "text/csv")},
    )
    assert imported.status_code == 303
    with pages.runtime.db.session() as session:
        quantities = sorted(session.scalars(select(Need.quantity)))
    assert quantities == [4, 10]


def test_languages_follow_the_browser_then_the_choice(pages: Pages) -> None:
    client = pages.signed_in("coordinator", language="fr-FR,fr;q=0.9")
    page = client.get("/needs")
    assert '<html lang="fr">' in page.text
    assert "Publier un besoin" in page.text
    switched = post_form(client, "/needs", "/language", {"lang": "en", "next": "/needs"})
    assert switched.status_code == 303
    assert "lang=en" in switched.headers["set-cookie"]
    english = client.get("/needs")
    assert '<html lang="en">' in english.text
    assert "Post a need" in english.text
    with pages.runtime.db.session() as session:
        user = session.scalars(
            select(User).where(User.username == pages.usernames["coordinator"])
        ).one()
        assert user.language == "en"
    # On another device with a French browser, the saved preference wins at sign-in.
    elsewhere = pages.signed_in("coordinator", language="fr")
    assert '<html lang="en">' in elsewhere.get("/needs").text


def test_live_regions_answer_204_while_nothing_changes(pages: Pages) -> None:
    client = pages.signed_in("operator")
    page = client.get(f"/sites/{pages.site.id}").text
    url = re.search(r'id="site-live" class="live" hx-get="([^"]+)"', page)
    assert url
    poll = url.group(1).replace("&amp;", "&")
    assert client.get(poll, headers={"HX-Request": "true"}).status_code == 204
    planned_job(pages, pages.site)  # the queue changes
    changed = client.get(poll, headers={"HX-Request": "true"})
    assert changed.status_code == 200
    assert "Accept" in changed.text
    assert changed.text.startswith('<div id="site-live"')


def test_operator_forms_keep_input_and_record(pages: Pages) -> None:
    job = planned_job(pages, pages.site)
    client = pages.signed_in("operator")
    site = pages.site.id
    refused = post_form(client, f"/jobs/{job.id}/refuse", f"/jobs/{job.id}/refuse", {"reason": " "})
    assert refused.status_code == 422
    assert 'id="e-reason"' in refused.text
    spool = post_form(
        client,
        f"/printers/{job.printer_id}/spool",
        f"/printers/{job.printer_id}/spool",
        {"material_key": "PETG", "colour": "bleu translucide", "remaining_g": "-5"},
    )
    assert spool.status_code == 422
    assert 'value="bleu translucide"' in spool.text
    assert 'id="e-remaining_g"' in spool.text
    waste = post_form(
        client,
        f"/sites/{site}/waste",
        f"/sites/{site}/waste",
        {"kind": "support_and_brim", "material_key": "PLA", "mass_g": "85,5", "note": "brims"},
    )
    assert waste.status_code == 303
    listed = client.get(f"/sites/{site}/waste").text
    assert "85.5" in listed
    with pages.runtime.db.session() as session:
        entry = session.scalars(select(WasteEntry)).one()
        assert (entry.mass_g, entry.site_id, entry.estimated) == (85.5, site, False)
    accepted = client.post(
        f"/jobs/{job.id}/accept",
        data={"csrf_token": csrf_of(listed)},
        headers={"HX-Request": "true"},
    )
    assert accepted.status_code == 200
    assert accepted.text.startswith('<div id="site-live"')
    assert "Job accepted" in accepted.text  # the notice, swapped out of band


def test_admin_forms_place_errors_next_to_fields(pages: Pages) -> None:
    client = pages.signed_in("admin")
    refused = post_form(
        client,
        "/admin/users",
        "/admin/users",
        {"username": "marc", "password": "password-1", "role": "operator"},
    )
    assert refused.status_code == 422
    assert 'id="e-site_ids"' in refused.text  # an operator needs a site
    assert 'value="marc"' in refused.text
    created = post_form(
        client,
        "/admin/users",
        "/admin/users",
        {
            "username": "marc",
            "password": "password-1",
            "role": "operator",
            "site_ids": str(pages.site.id),
            "language": "fr",
        },
    )
    assert created.status_code == 303
    marc = pages.client()
    login = marc.post(
        "/login",
        data={
            "username": "marc",
            "password": "password-1",
            "csrf_token": csrf_of(marc.get("/login").text),
        },
    )
    assert login.status_code == 200
    assert "Fablab UTC" in login.text  # the operator lands on its only site


def test_pages_load_nothing_from_elsewhere(pages: Pages) -> None:
    client = pages.signed_in("admin")
    for path in ("/needs", "/needs/new", "/plan", "/map", "/stats", "/sites", "/audit"):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert response.headers["cache-control"] == "no-store"
        sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        external = [s for s in sources if re.match(r"(https?:)?//", s)]
        assert not external, (path, external)
        for asset in (s for s in sources if s.startswith("/static/")):
            assert client.get(asset).status_code == 200, asset


def test_refusing_with_a_reason_and_starting_an_accepted_job(pages: Pages) -> None:
    from scheduler.models import Job, JobRefusal, JobState

    refused_job = planned_job(pages, pages.site)
    started_job = planned_job(pages, pages.site)
    client = pages.signed_in("operator")
    refused = post_form(
        client,
        f"/jobs/{refused_job.id}/refuse",
        f"/jobs/{refused_job.id}/refuse",
        {"reason": "buse bouchée jusqu'à jeudi"},
    )
    assert refused.status_code == 303
    assert refused.headers["location"] == f"/sites/{pages.site.id}"
    with pages.runtime.db.session() as session:
        assert session.get(Job, refused_job.id).state is JobState.QUEUED  # type: ignore[union-attr]
        refusal = session.scalars(select(JobRefusal)).one()
        assert refusal.reason == "buse bouchée jusqu'à jeudi"

    page = client.get(f"/sites/{pages.site.id}").text
    too_early = client.post(
        f"/jobs/{started_job.id}/start",
        data={"csrf_token": csrf_of(page)},
        headers={"HX-Request": "true"},
    )
    assert "nothing to start" in too_early.text
    client.post(
        f"/jobs/{started_job.id}/accept",
        data={"csrf_token": csrf_of(page)},
        headers={"HX-Request": "true"},
    )
    started = client.post(
        f"/jobs/{started_job.id}/start",
        data={"csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert started.status_code == 303  # without htmx: back to the site's page
    assert "Sent to the printer" in client.get(started.headers["location"]).text
