"""``iact-web``: Django's manage command with ``DJANGO_SETTINGS_MODULE=iact_web.settings`` preset.

A configuration error is one line on stderr and exit code 2 (no traceback); everything else is Django's
``manage.py`` behaviour (``iact-web migrate``, ``iact-web check --deploy``, ``iact-web sync_accounts``...).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import execute_from_command_line

SETTINGS_MODULE = "iact_web.settings"


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    try:
        settings.INSTALLED_APPS  # noqa: B018  (loads the configuration now, to report its errors plainly)
    except ImproperlyConfigured as exc:
        print(f"iact-web: configuration error: {exc}", file=sys.stderr)
        return 2
    execute_from_command_line(["iact-web", *(sys.argv[1:] if argv is None else argv)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
