"""The one secret rule (playbooks/test_plugins/real_secret.py): each placeholder form is refused, a real secret
passes, and the Ansible test plugin exposes exactly that function."""

from __future__ import annotations

import importlib.util
import secrets
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

PLUGIN = Path(__file__).resolve().parents[2] / "playbooks/test_plugins/real_secret.py"
_spec = importlib.util.spec_from_file_location("real_secret", PLUGIN)
assert _spec is not None and _spec.loader is not None
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)

REAL = "Vq3jz7Lr0pXc9TbN2mWd5s"


@pytest.mark.parametrize("value", [
    None, "", "   ", "short", REAL[:11],                                  # missing or too short
    "changeme", "CHANGE_ME", "change-me", "Change Me", "changeme-please-now", "xx-changeme-xx",
    "password", "PASSWORD", "secret", "todo", "admin", "root", "cassandra", "mysql", "iact", "collector",
    "xxxxxxxxxxxx", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "            x",    # one character repeated (after trim)
    "<the admin password>", "<>" + "x" * 20 + "<>",                        # a template's slot
    "{{ vault_cassandra_admin_password }}", "prefix{{ vault_x }}suffix",   # a reference left unrendered
])
def test_each_placeholder_form_is_refused(value: object) -> None:
    assert rs.real_secret(value, 4 if value in rs.PLACEHOLDER_WORDS else 12) is False


def test_the_words_are_refused_whatever_the_minimum_length() -> None:
    for word in rs.PLACEHOLDER_WORDS:
        assert rs.real_secret(word, 1) is False
        assert rs.real_secret(word.upper(), 1) is False


@pytest.mark.parametrize("value", [REAL, "correct horse battery staple", secrets.token_hex(16), 123456789012345])
def test_a_real_secret_passes(value: object) -> None:
    assert rs.real_secret(value, 12) is True


def test_the_minimum_length_is_the_callers() -> None:
    assert rs.real_secret(REAL[:12], 12) is True
    assert rs.real_secret(REAL[:12], 32) is False
    assert rs.real_secret(secrets.token_hex(16), "32") is True  # Ansible may hand the length over as text


def test_the_plugin_exposes_the_rule_under_its_name() -> None:
    assert rs.TestModule().tests() == {"real_secret": rs.real_secret}


@given(st.text(alphabet=string.ascii_letters + string.digits, min_size=12, max_size=64).filter(
    lambda s: len(set(s)) > 1 and "changeme" not in s.lower() and s.lower() not in rs.PLACEHOLDER_WORDS))
def test_random_alphanumeric_secrets_pass(value: str) -> None:
    assert rs.real_secret(value, 12) is True


@given(st.one_of(st.none(), st.text(), st.integers(), st.floats(), st.booleans()), st.integers(0, 64))
def test_the_rule_is_total(value: object, min_length: int) -> None:
    assert rs.real_secret(value, min_length) in (True, False)
