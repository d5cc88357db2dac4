"""The one rule for a secret from the inventory: a real secret, not a placeholder (iact-ops).

Every check of a secret uses it: the roles' preflights (cassandra, collector, mysql, web, backup; each role
links this file into its own test_plugins/, so the role also works outside this repository's playbooks) and
playbooks/validate_inventory.yml (this folder is beside the playbooks, so Ansible loads it for them):

    that: lookup('ansible.builtin.vars', item) is real_secret(12)

A value is refused when it is shorter than ``min_length`` (after trimming whitespace), is one character
repeated (``xxxxxxxxxxxx``), is ``<...>`` (a template's slot), holds ``{{`` (a reference left unrendered),
contains ``changeme`` (with or without ``-``/``_``/space), or is one of the words people leave in place
(``password``, ``secret``, ``todo``, ``admin``, ``root``, a service's name). Case does not matter.
The value is never printed (the callers' tasks are no_log).
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Words refused as the whole value: what examples and defaults of this bundle and its services say.
PLACEHOLDER_WORDS = frozenset({
    "password", "passwd", "secret", "todo", "admin", "root", "cassandra", "mysql", "mariadb", "iact", "collector",
})
_CHANGEME = re.compile(r"change[-_ ]?me", re.IGNORECASE)
_SLOT = re.compile(r"^<.*>$", re.DOTALL)


def real_secret(value: object, min_length: int = 12) -> bool:
    """True when ``value`` is a real secret: long enough and none of the placeholder forms."""
    text = "" if value is None else str(value).strip()
    return not (
        len(text) < int(min_length)
        or len(set(text)) == 1
        or _SLOT.match(text) is not None
        or "{{" in text
        or _CHANGEME.search(text) is not None
        or text.lower() in PLACEHOLDER_WORDS
    )


class TestModule:
    """Ansible test plugin: ``value is real_secret(min_length)``."""

    def tests(self) -> dict[str, Callable[..., bool]]:
        return {"real_secret": real_secret}
