"""Login everywhere, token and session authentication, CSRF, bad input as 4xx, and the audit trail."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iact_web.core.models import ApiClient, AuditEvent
from webtest_helpers import Principal, Token

pytestmark = pytest.mark.integration

PAGES = ["/", "/dora/", "/dora/events/?set=deployments", "/ops/health/", "/ops/alerts/", "/ops/jobs/",
         "/ops/recovery/", "/ops/quality/", "/ops/audit/", "/ops/remediations/", "/logs/", "/api/", "/admin/"]
API = ["/api/v1/dora/metrics", "/api/v2/dora/metrics", "/api/v1/deployments", "/api/v1/changes",
       "/api/v1/incidents", "/api/v1/health", "/api/v1/alerts", "/api/v1/jobs", "/api/v1/drills",
       "/api/v1/quality", "/api/v1/live", "/api/v1/logs?host=a&source=b", "/api/v1/schema", "/api/v2/schema"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_login(defaults_dir: Path, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(("/login/", "/admin/login/"))


@pytest.mark.parametrize("path", API)
def test_the_api_answers_401_not_a_redirect(defaults_dir: Path, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Token")


def test_token_session_and_revocation(api_token: Token, browser: Client) -> None:
    assert api_token.http().get("/api/v1/live").status_code == 200
    assert browser.get("/api/v1/live").status_code == 200  # the browser's session works for the API too
    assert Client(HTTP_AUTHORIZATION=f"Bearer {api_token.token}").get("/api/v1/live").status_code == 200
    ApiClient.objects.filter(pk=api_token.client.pk).update(revoked_at=timezone.now())
    refused = api_token.http().get("/api/v1/live")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert AuditEvent.objects.filter(event="token_rejected", detail__prefix=api_token.token[:8]).exists()
    assert AuditEvent.objects.filter(event="token_use", actor=f"client:{api_token.client.name}").count() == 1


def test_login_failed_login_and_logout_are_audited(principal: Principal) -> None:
    name = principal.user.username
    client = Client()
    client.get("/login/")
    bad = client.post("/login/", {"username": name, "password": "wrong", "next": "/dora/"})
    assert bad.status_code == 200 and b"Wrong user name or password" in bad.content
    good = client.post("/login/", {"username": name, "password": principal.password, "next": "/ops/health/"})
    assert good.status_code == 302 and good["Location"] == "/ops/health/"
    assert client.get("/ops/health/").status_code == 200
    client.post("/logout/")
    events = list(AuditEvent.objects.filter(at__gte=timezone.now() - timezone.timedelta(minutes=5))
                  .filter(actor__in=[name, ""]).values_list("event", "actor", "detail"))
    assert ("login", name, None) in events and ("logout", name, None) in events
    assert any(e == "login_failed" and d == {"username": name} for e, _, d in events)
    assert not any("wrong" in json.dumps(d) for _, _, d in events)  # no password in the trail


def test_admin_changes_are_audited(browser: Client, principal: Principal, tag: str) -> None:
    page = browser.get("/admin/iact_core/apiclient/add/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token
    created = browser.post("/admin/iact_core/apiclient/add/", {
        "csrfmiddlewaretoken": token.group(1), "name": f"it-admin-{tag}", "description": "made in the admin",
        "burst_limit": "", "sustained_limit": ""})
    assert created.status_code == 302, created.content[:500]
    client = ApiClient.objects.get(name=f"it-admin-{tag}")
    assert client.managed_by == "admin" and len(client.token_sha256) == 64
    assert AuditEvent.objects.filter(event="admin_change", actor=principal.user.username,
                                     object_id=str(client.pk)).exists()
    ApiClient.objects.filter(pk=client.pk).update(revoked_at=timezone.now())


def test_session_posts_need_the_csrf_token(browser: Client, health_db: Any, tag: str) -> None:
    response = browser.post("/api/v1/alerts/1/acknowledge", data="{}", content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    page = browser.post("/ops/alerts/1/acknowledge/", {"note": "x"})
    assert page.status_code == 403


# --- bad input: always a 4xx naming the parameter, never a 500 ----------------------------------------------

VALUES = st.one_of(st.text(max_size=40), st.sampled_from([
    "' OR '1'='1", "1; DROP TABLE alerts", "%", "_", "\\", "\x00", "9" * 30, "-5", "2026-02-30", "1995-06-01",
    "checkout", "30", "0", "v1", "<b>", "ALLOW FILTERING", "/var/log/syslog", "x" * 300]))
NAMES = st.sampled_from(["service", "window", "from", "to", "page", "page_size", "set", "status", "host", "job",
                         "source", "cursor", "format", "export"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["/api/v1/dora/metrics", "/api/v2/dora/metrics", "/api/v1/deployments", "/api/v1/incidents",
                        "/api/v1/alerts", "/api/v1/jobs", "/api/v1/health", "/api/v1/logs"]),
       st.dictionaries(NAMES, VALUES, max_size=4))
def test_hostile_query_strings_get_4xx_naming_the_parameter(api_token: Token, path: str,
                                                            query: dict[str, str]) -> None:
    response = api_token.http().get(f"{path}?{urlencode(query)}")
    body = response.content.decode()
    assert response.status_code < 500 or response.status_code == 503, body[:300]
    assert "Traceback" not in body
    if response.status_code == 400:
        assert response.json()["parameter"], body


def test_bodies_that_are_not_json_objects(api_token: Token) -> None:
    http = api_token.http()
    for body, content_type in (("{not json", "application/json"), ("[1, 2]", "application/json"),
                               ("note=x", "application/x-www-form-urlencoded"), ('{"note": 5}', "application/json"),
                               ('{"note": "' + "x" * 600 + '"}', "application/json")):
        response = http.post("/api/v1/alerts/1/acknowledge", data=body, content_type=content_type)
        assert response.status_code in (400, 415), (body, response.status_code)
        problem = response.json()
        assert problem["status"] == response.status_code
        if response.status_code == 400:
            assert problem["parameter"] in ("body", "note"), problem
