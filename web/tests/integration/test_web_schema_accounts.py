"""The management commands the role runs (idempotent, saying whether they changed anything) and the
least-privilege account they run with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from iact_web.core.models import ApiClient, AuditEvent, hash_token

pytestmark = pytest.mark.integration


def _iact_web(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iact_web.cli", *args], env=dict(os.environ),
                          capture_output=True, text=True, check=False, timeout=300)


def test_migrate_is_idempotent_and_says_so(defaults_dir: Path) -> None:
    first = _iact_web("migrate", "--noinput")
    assert first.returncode == 0, first.stderr
    second = _iact_web("migrate", "--noinput")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().splitlines()[-1] == "unchanged"
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM django_migrations WHERE app = 'sessions' AND name = '0001_initial'")
        assert cur.fetchone() == (1,)


def test_the_app_account_cannot_touch_what_it_does_not_own(defaults_dir: Path) -> None:
    statements = [
        "CREATE TABLE it_not_allowed (id INT)",
        "DROP TABLE deployments",
        "DELETE FROM web_audit_log WHERE id < 0",
        "UPDATE web_audit_log SET actor = 'x' WHERE id < 0",
        "UPDATE alerts SET summary = 'x' WHERE id < 0",
        "INSERT INTO deployments (source, source_event_id, service, status, finished_at) "
        "VALUES ('x', 'x', 'x', 'success', NOW())",
        "ALTER TABLE alerts ADD COLUMN it_x INT",
    ]
    for sql in statements:
        with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql)
        assert caught.value.args[0] in (1142, 1143), (sql, caught.value.args)  # command / column denied


def test_sync_accounts(tmp_path: Path, defaults_dir: Path) -> None:
    # A scope of its own: the stack's real vault-managed users and clients share this database.
    tag = uuid.uuid4().hex[:10]
    scope = ("--scope", f"it-sync-{tag}-")
    token_a, token_b = f"tok-a-{uuid.uuid4().hex}{uuid.uuid4().hex}", f"tok-b-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    accounts = {
        "users": [{"username": f"it-sync-{tag}-u", "password": f"Pw-{uuid.uuid4().hex}", "is_staff": True}],
        "clients": [{"name": f"it-sync-{tag}-a", "token": token_a, "burst_limit": 5000},
                    {"name": f"it-sync-{tag}-b", "token": token_b}],
    }
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(accounts))
    path.chmod(0o644)
    refused = _iact_web("sync_accounts", "--file", str(path), *scope)
    assert refused.returncode != 0 and "chmod 0600" in refused.stderr
    path.chmod(0o600)
    try:
        first = _iact_web("sync_accounts", "--file", str(path), *scope)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip().splitlines()[-1].startswith("changed:")
        second = _iact_web("sync_accounts", "--file", str(path), *scope)
        assert second.stdout.strip().splitlines()[-1] == "unchanged", second.stdout
        a = ApiClient.objects.get(name=f"it-sync-{tag}-a")
        assert a.token_sha256 == hash_token(token_a) and a.burst_limit == 5000 and a.managed_by == "vault"
        with connection.cursor() as cur:  # the token itself is nowhere in the table
            cur.execute("SELECT COUNT(*) FROM web_api_clients WHERE CONCAT_WS(' ', name, description, "
                        "token_sha256, token_prefix) LIKE %s", (f"%{token_a[8:]}%",))
            assert cur.fetchone() == (0,)
        user = User.objects.get(username=f"it-sync-{tag}-u")
        assert user.is_staff and not user.is_superuser and user.check_password(accounts["users"][0]["password"])
        # Drop client b and the user from the file: b is revoked, the user deactivated, a is untouched.
        accounts["clients"] = accounts["clients"][:1]
        accounts["users"] = []
        path.write_text(json.dumps(accounts))
        third = _iact_web("sync_accounts", "--file", str(path), *scope)
        assert "revoked" in third.stdout and "deactivated" in third.stdout
        assert ApiClient.objects.get(name=f"it-sync-{tag}-b").revoked_at is not None
        assert ApiClient.objects.get(name=f"it-sync-{tag}-a").revoked_at is None
        assert not User.objects.get(username=f"it-sync-{tag}-u").is_active
        assert AuditEvent.objects.filter(event="account_sync", detail__changes__icontains=f"it-sync-{tag}-b").exists()
    finally:
        accounts["clients"] = []
        path.write_text(json.dumps(accounts))
        _iact_web("sync_accounts", "--file", str(path), *scope)
        User.objects.filter(username=f"it-sync-{tag}-u").update(is_active=False)


def test_sync_accounts_refuses_weak_passwords_and_short_tokens(tmp_path: Path, defaults_dir: Path) -> None:
    path = tmp_path / "accounts.json"
    for accounts, words in (
        ({"users": [{"username": "someone-else", "password": "Pw-long-enough-42x"}]}, "outside the scope"),
        ({"users": [{"username": "it-weak", "password": "password1234"}]}, "too common"),
        ({"clients": [{"name": "it-short", "token": "abc"}]}, "clients.0.token"),
        ({"users": [], "clients": [], "extra": 1}, "extra"),
    ):
        path.write_text(json.dumps(accounts))
        path.chmod(0o600)
        done = _iact_web("sync_accounts", "--file", str(path), "--scope", "it-")
        assert done.returncode != 0 and words in done.stderr, done.stderr


def test_prune_ratelimits_says_whether_it_deleted(defaults_dir: Path) -> None:
    done = _iact_web("prune_ratelimits")
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last == "unchanged" or last.startswith("changed: deleted")
