"""Deprecation headers (RFC 9745, RFC 8594, successor link) and 410 after the sunset: no database needed
(the limiter is switched off here; the integration tests check both together)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.test import Client, override_settings
from iact_web.config import ApiSettings, ApiVersionSettings, RateLimitSettings


def _config(deprecated: datetime, sunset: datetime) -> object:
    return settings.CONFIG.model_copy(update={
        "ratelimit": RateLimitSettings(enabled=False),
        "api": ApiSettings(versions={"v1": ApiVersionSettings(deprecated_at=deprecated, sunset_at=sunset)}),
    })


def test_deprecated_version_announces_deprecation_sunset_and_successor() -> None:
    deprecated = datetime.now(UTC) - timedelta(days=10)
    sunset = deprecated + timedelta(days=200)
    with override_settings(CONFIG=_config(deprecated, sunset)):
        response = Client().get("/api/v1/health")
    assert response.status_code == 401  # still served (here: not logged in)
    assert response["Deprecation"] == f"@{int(deprecated.timestamp())}"
    assert parsedate_to_datetime(response["Sunset"]) == sunset.replace(microsecond=0)
    assert '</api/v2/health>; rel="successor-version"' in response["Link"]
    assert 'rel="deprecation"' in response["Link"]
    with override_settings(CONFIG=_config(deprecated, sunset)):
        current = Client().get("/api/v2/health")
    assert "Deprecation" not in current and "Sunset" not in current


def test_after_the_sunset_the_version_answers_410_with_the_way_forward() -> None:
    deprecated = datetime.now(UTC) - timedelta(days=300)
    sunset = deprecated + timedelta(days=200)
    with override_settings(CONFIG=_config(deprecated, sunset)):
        response = Client().get("/api/v1/deployments?window=30")
        versions = Client().get("/api/versions").json()
    assert response.status_code == 410
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 410 and body["successor"] == "v2" and "Traceback" not in response.content.decode()
    assert '</api/v2/deployments>; rel="successor-version"' in response["Link"]
    assert response["Deprecation"] == f"@{int(deprecated.timestamp())}"
    assert {v["version"]: v["status"] for v in versions["versions"]} == {"v1": "sunset", "v2": "current"}


def test_an_announced_deprecation_is_sent_before_it_takes_effect() -> None:
    deprecated = datetime.now(UTC) + timedelta(days=30)
    with override_settings(CONFIG=_config(deprecated, deprecated + timedelta(days=190))):
        response = Client().get("/api/v1/live")
    assert response["Deprecation"] == f"@{int(deprecated.timestamp())}"
    assert response.status_code == 401
