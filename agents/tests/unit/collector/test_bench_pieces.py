"""The pieces of bench/ that need no lab: the parse part at a tiny size, reading Ansible's profile output,
py-spy's collapsed stacks, the lab inventory, the results file and table. (The parts that need the lab run at
tiny sizes in agents/tests/integration/collector: test_benchmark_runs.)"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[4] / "bench"


def bench(name: str) -> Any:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def test_parse_part_reads_every_format() -> None:
    result = bench("parse_bench").run(500, repeat=1)
    assert set(result) == {"syslog file format", "RFC 5424", "JSON lines", "journal JSON"}
    for r in result.values():
        assert r["lines"] == 500 and r["bytes"] > 0 and 0 < r["ratio"] < 1


PROFILE_OUTPUT = """
PLAY RECAP *********************************************************************
cass1                      : ok=120  changed=0    unreachable=0    failed=0    skipped=40   rescued=0    ignored=0
mysql1                     : ok=98   changed=2    unreachable=0    failed=0    skipped=12   rescued=0    ignored=0

Sunday 29 November 2026  23:59:59 +0000 (0:00:01.234)       0:05:00.000 *******
===============================================================================
cassandra : Service | Wait for every node UN ----------------------------------------------------- 45.67s
agents : Install | iact-agents and its dependencies, offline from the wheelhouse ------------------ 12.30s
Gathering Facts ------------------------------------------------------------------------------------ 3.21s
===============================================================================
cassandra ------------------------------------------------------------------------------------- 150.12s
agents ----------------------------------------------------------------------------------------- 40.00s
gather_facts ------------------------------------------------------------------------------------ 9.80s
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
total ------------------------------------------------------------------------------------------ 199.92s
"""


def test_deploy_part_reads_profile_roles_and_tasks() -> None:
    got = bench("deploy").parse_profile(PROFILE_OUTPUT)
    assert got["total_s"] == 199.92
    assert got["roles"][0] == ("cassandra", 150.12) and ("gather_facts", 9.8) in got["roles"]
    assert got["slowest_tasks"][0] == ("cassandra : Service | Wait for every node UN", 45.67)
    assert ("Gathering Facts", 3.21) in got["slowest_tasks"] and "Gathering Facts" not in dict(got["roles"])
    assert got["changed"] == 2 and got["failed"] == 0 and set(got["recap"]) == {"cass1", "mysql1"}


def test_spy_summary_shares_samples_by_thread_and_function(tmp_path: Path) -> None:
    raw = tmp_path / "spy.txt"
    raw.write_text(
        "thread (0x1): MainThread;main (cli.py:10);step (iact_agents/collector/daemon.py:5) 30\n"
        "thread (0x1): MainThread;main (cli.py:10);parse (iact_agents/collector/records.py:7) 50\n"
        "thread (0x2): event_loop;_run_loop (site-packages/cassandra/io/libevreactor.py:3) 20\n")
    s = bench("spy").summarize(raw)
    assert s["samples"] == 100
    assert dict(s["threads"]) == {"thread (0x1): MainThread": 0.8, "thread (0x2): event_loop": 0.2}
    assert s["self"][0] == ("parse (collector/records.py)", 0.5)
    assert dict(s["inclusive"])["main (cli.py)"] == 0.8


def test_lab_inventory_groups() -> None:
    lab = bench("lab")
    hosts = {h.name: h for h in lab.hosts()}
    assert {h.name for h in lab.group("cassandra")} == {"cass1", "cass2", "cass3"}
    assert {h.name for h in lab.group("collectors")} == {"mysql1", "cass1", "cass2", "cass3"}
    assert hosts["mysql1"].address == "172.30.80.11" and hosts["cass1"].container == "iact-cass1"


def test_results_file_and_table(tmp_path: Path) -> None:
    common = bench("common")
    res = common.Results("t")
    res.data["load_before"] = "1.00 1.00 1.00"
    res.add("2 collector / ceiling", "rows/s", "4 000 rows/s", ratio="0.85 x", target=">= 0.8", met=True)
    res.add("3 cost", "peak RSS", "70 MiB", target="<= 64 MiB", met=False)
    table = res.markdown()
    assert "| 2 collector / ceiling | rows/s | 4 000 rows/s | 0.85 x | >= 0.8 | yes |" in table
    assert "| **no** |" in table and "load before/after: 1.00 1.00 1.00" in table
    doc = json.loads(res.write(tmp_path).read_text())
    assert doc["name"] == "t" and doc["table"][1]["met"] is False and doc["load_before"] == "1.00 1.00 1.00"
