"""`iact-agent cassandra status`: the Cassandra ring as this node sees it, judged once for every caller.

The one reader of ``nodetool status`` (and, with ``--schema``, ``nodetool describecluster``) for the roles'
waits and health gates, the ops and restore playbooks, ``iact-backup``, the DR drill and the tests: they
ask this command instead of matching nodetool's columns themselves. The parsing is
:mod:`iact_agents.health.parsers` (the health agent's, tested on captured output).

Exit codes: 0 the ring is as asked (every listed node ``UN``, at least ``--expect`` of them, ``--node`` among
them, one schema version with ``--schema``); 1 it is not; 3 nodetool could not be asked. ``--json`` prints::

    {"ok": bool, "reason": str, "listed": n, "up_normal": n, "not_up_normal": ["DN 10.0.0.3", ...],
     "nodes": [{"address", "datacenter", "rack", "code", "host_id", "load", "owns"}, ...],
     "schema": {"versions": [...], "unreachable": [...], "agreement": bool}}   (schema with --schema only)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any

from .health.checks import CommandFailed, Runner, run_program
from .health.parsers import ClusterDescription, NodeStatus, parse_describecluster, parse_nodetool_status

EXIT_OK, EXIT_NOT_OK, EXIT_UNKNOWN = 0, 1, 3


@dataclass
class Ring:
    nodes: list[NodeStatus] = field(default_factory=list)
    schema: ClusterDescription | None = None
    error: str = ""

    def judge(self, *, expect: int = 1, node: str | None = None, schema: bool = False) -> tuple[bool, str]:
        """Whether the ring is as asked, and the first reason it is not."""
        problems = [self.error] if self.error else []
        if node is not None:
            mine = [n.code for n in self.nodes if n.address == node]
            problems += [f"{node} is not in the ring"] if not mine else [f"{node} is {mine[0]}"] * (mine[0] != "UN")
        else:
            bad = [f"{n.code} {n.address}" for n in self.nodes if n.code != "UN"]
            problems += ["not up and normal: " + ", ".join(bad)] if bad else []
        if len(self.nodes) < expect:
            problems.append(f"{len(self.nodes)} node(s) listed, {expect} expected")
        if schema and self.schema is not None and not self.schema.agreement:
            unreachable = ", ".join(self.schema.unreachable)
            problems.append(f"schema: {len(self.schema.versions)} version(s)"
                            + (f", unreachable: {unreachable}" if unreachable else ""))
        return (False, problems[0]) if problems else (True, "ok")

    def as_dict(self, ok: bool, reason: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ok": ok,
            "reason": reason,
            "listed": len(self.nodes),
            "up_normal": sum(1 for n in self.nodes if n.code == "UN"),
            "not_up_normal": [f"{n.code} {n.address}" for n in self.nodes if n.code != "UN"],
            "nodes": [
                {"address": n.address, "datacenter": n.datacenter, "rack": n.rack, "code": n.code,
                 "host_id": n.host_id, "load": n.load, "owns": n.owns}
                for n in self.nodes
            ],
        }
        if self.schema is not None:
            doc["schema"] = {"versions": self.schema.versions, "unreachable": self.schema.unreachable,
                             "agreement": self.schema.agreement}
        return doc


def read_ring(nodetool: list[str], *, schema: bool, timeout: float, run: Runner = run_program) -> Ring:
    """Ask nodetool; never raises: a failure is ``Ring.error``."""
    ring = Ring()
    for sub in ("status", "describecluster") if schema else ("status",):
        try:
            out = run([*nodetool, sub], timeout)
        except CommandFailed as exc:
            ring.error = f"nodetool {sub}: {exc}"
            return ring
        if out.returncode != 0:
            ring.error = f"nodetool {sub} failed: {out.first_error_line}"
            return ring
        if sub == "status":
            ring.nodes = parse_nodetool_status(out.stdout)
            if not ring.nodes:
                ring.error = "nodetool status listed no node (output not understood)"
                return ring
        else:
            ring.schema = parse_describecluster(out.stdout)
    return ring


def cmd_status(args: argparse.Namespace) -> int:
    ring = read_ring(args.nodetool.split(), schema=args.schema, timeout=args.timeout)
    ok, reason = ring.judge(expect=args.expect, node=args.node, schema=args.schema)
    if args.json:
        print(json.dumps(ring.as_dict(ok, reason), sort_keys=True))
    else:
        for n in ring.nodes:
            print(f"{n.code}  {n.address:<39} {n.datacenter}/{n.rack}")
        print(reason)
    if ring.error:
        return EXIT_UNKNOWN
    return EXIT_OK if ok else EXIT_NOT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cassandra = sub.add_parser("cassandra", help="the Cassandra ring as this node sees it (for playbooks and tests)")
    actions = cassandra.add_subparsers(dest="cassandra_action", metavar="ACTION", required=True)
    status = actions.add_parser(
        "status", help="every node UN? (exit 0 yes, 1 no, 3 nodetool could not be asked)",
        description="Read `nodetool status` (and `describecluster` with --schema) and judge the ring.")
    status.add_argument("--expect", type=int, default=1, metavar="N", help="at least N nodes listed (default 1)")
    status.add_argument("--node", metavar="ADDRESS", help="judge only this node: listed and UN")
    status.add_argument("--schema", action="store_true", help="also require one schema version, none unreachable")
    status.add_argument("--json", action="store_true", help="print the ring and the verdict as JSON")
    status.add_argument("--nodetool", default="/usr/local/bin/nodetool", help="the nodetool command")
    status.add_argument("--timeout", type=float, default=120.0, metavar="S", help="per nodetool call (default 120)")
    status.set_defaults(func=cmd_status)
