"""Filters of roles/backup: the per-host manifest key, derived on the controller from the vault's secret."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable


def backup_manifest_host_key(secret: str, host: str) -> str:
    """HMAC-SHA256(secret, label + host) in hex: each source gets its own key, so the key of one host cannot
    authenticate another host's backups, and none of them reveals the vault's secret."""
    if not secret or not host:
        raise ValueError("backup_manifest_host_key needs a secret and a host name")
    label = b"iact-backup manifest key v1\n"
    return hmac.new(secret.encode(), label + host.encode(), hashlib.sha256).hexdigest()


class FilterModule:
    def filters(self) -> dict[str, Callable[[str, str], str]]:
        return {"backup_manifest_host_key": backup_manifest_host_key}
