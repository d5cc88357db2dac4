"""Retention's table list, its defaults, the cron job that passes them, and the --keep-days parser (total:
any text is a retention or an InputError naming the flag)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from iact_agents.errors import InputError
from iact_agents.retention import DEFAULT_KEEP_DAYS, TABLES, parse_keep

ROOT = Path(__file__).resolve().parents[3]


def test_every_table_has_a_default_and_the_remediations_are_kept_like_the_job_runs() -> None:
    assert set(DEFAULT_KEEP_DAYS) == set(TABLES)
    assert TABLES["remediations"] == "decided_at"  # migration 0016's indexed time column
    assert DEFAULT_KEEP_DAYS["remediations"] == DEFAULT_KEEP_DAYS["job_runs"] == 400
    assert parse_keep(None) == DEFAULT_KEEP_DAYS
    assert parse_keep(["remediations=30"]) == DEFAULT_KEEP_DAYS | {"remediations": 30}


def test_the_cron_job_passes_every_tables_default() -> None:
    """roles/cron's retention job names every table with its documented default (not silently the code's)."""
    jobs = yaml.safe_load((ROOT / "roles/cron/defaults/main.yml").read_text())["cron_jobs"]
    command = next(j["command"] for j in jobs["iact-retention"]["jobs"] if j["name"] == "retention")
    words = shlex.split(re.sub(r"\{\{.*?\}\}", "X", command))
    passed = [words[i + 1] for i, w in enumerate(words) if w == "--keep-days"]
    assert parse_keep(passed) == DEFAULT_KEEP_DAYS
    assert sorted(v.split("=")[0] for v in passed) == sorted(TABLES)
    about = jobs["iact-retention"]["about"]
    assert "remediations" in about and "400 days" in about


@pytest.mark.parametrize("value", ["remediations", "remediations=", "remediations=-1", "remediations=1.5",
                                   "remediations=\u00b2", "remediations=123456", "=", "remediations=9" * 3])
def test_a_bad_retention_names_the_flag(value: str) -> None:
    with pytest.raises(InputError, match="--keep-days"):
        parse_keep([value])


@given(st.lists(st.text(max_size=30), max_size=4))
def test_any_keep_days_text_is_a_retention_or_an_input_error(values: list[str]) -> None:
    try:
        keep = parse_keep(values)
    except InputError as exc:
        assert "--keep-days" in str(exc)
    else:
        assert all(isinstance(d, int) and 0 <= d <= 99999 for d in keep.values())


@given(st.sampled_from(sorted(TABLES)), st.integers(min_value=0, max_value=99999))
def test_a_written_retention_reads_back(table: str, days: int) -> None:
    assert parse_keep([f" {table} = {days} "])[table] == days
