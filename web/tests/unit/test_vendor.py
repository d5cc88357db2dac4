"""The vendored Chart.js is the file the npm registry published: its sha256 is recorded in vendor.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.contrib.staticfiles import finders

PACKAGE = Path(__file__).resolve().parents[2] / "iact_web"


def test_vendored_files_match_their_recorded_checksums() -> None:
    manifest = json.loads((PACKAGE / "vendor.json").read_text())
    assert manifest, "vendor.json lists the vendored files"
    for rel, entry in manifest.items():
        data = (PACKAGE / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{rel} differs from what was vendored"
        assert entry["tarball"].startswith("https://registry.npmjs.org/")
        assert entry["tarball_integrity"].startswith("sha512-")
    chart = (PACKAGE / "static/iact_web/vendor/chart.umd.min.js").read_text()
    assert chart.startswith("/*!\n * Chart.js v4.6.1") and "Released under the MIT License" in chart[:200]
    assert (PACKAGE / "static/iact_web/vendor/chart.js.LICENSE.md").is_file()


def test_collectstatic_finds_the_projects_own_files() -> None:
    """The files live in the package, not in an app: STATICFILES_DIRS must name them (or nginx serves 404s)."""
    for rel in ("iact_web/vendor/chart.umd.min.js", "iact_web/js/dashboard.js", "iact_web/js/live.js",
                "iact_web/css/app.css", "admin/css/base.css"):
        assert finders.find(rel), rel
