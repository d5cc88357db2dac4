"""Host-wide security checks: credential files, secrets on command lines, systemd unit exposure."""

from __future__ import annotations

import stat
from collections.abc import Iterator

from ..health.checks import CommandFailed
from . import parsers
from .config import CredentialRule
from .facts import Facts, FactUnavailable
from .model import Check, Outcome, Scope, Severity, not_applicable, verdict

STYLE_SECRETS = "project rule (STYLE.md 15: credentials only in 0600/0640 files, never on a command line)"


def credential_files(facts: Facts) -> dict[str, list[CredentialRule]]:
    """Every file a credential rule names, with the rules that name it."""
    found: dict[str, list[CredentialRule]] = {}
    for rule in facts.cfg.credentials.all_rules:
        for pattern in rule.paths:
            for path in facts.host.glob(pattern):
                found.setdefault(path, []).append(rule)
    return found


def _credential_findings(facts: Facts, files: dict[str, list[CredentialRule]]) -> Iterator[str]:
    host = facts.host
    for path, rules in sorted(files.items()):
        link, st = host.stat(path, follow=False), host.stat(path)
        if link is None or st is None or not stat.S_ISREG(st.st_mode):
            continue
        where = path if not stat.S_ISLNK(link.st_mode) else f"{path} (a link to a file)"
        mode = stat.S_IMODE(st.st_mode)
        owner, group = host.user_name(st.st_uid), host.group_name(st.st_gid)
        owners = sorted({o for r in rules for o in r.owners})
        groups = sorted({g for r in rules for g in r.groups})
        if mode & ~0o640:
            yield f"{where}: mode {mode:04o} (at most 0640)"
        if not any(owner in r.owners and (not mode & 0o040 or group in r.groups) for r in rules):
            if owner not in owners:
                yield f"{where}: owned by {owner} (allowed: {', '.join(owners)})"
            else:
                yield f"{where}: readable by group {group} (allowed: {', '.join(groups)})"


def judge_credentials(facts: Facts) -> Outcome:
    files = credential_files(facts)
    findings = list(_credential_findings(facts, files))
    return verdict(findings, f"{len(files)} credential files, each at most 0640 with an allowed owner and group",
                   "credential files are open to other users")


def judge_cmdline_secrets(facts: Facts) -> Outcome:
    host = facts.host
    findings = []
    for proc in host.processes:
        secrets = parsers.cmdline_secrets(proc.argv)
        variables = sorted(parsers.secret_variables(host.environ_names(proc.pid)))
        secrets += [f"{name}=*** in its environment" for name in variables]
        if secrets:
            findings.append(f"pid {proc.pid} ({host.user_name(proc.uid)}) {proc.program}: {', '.join(secrets)}")
    return verdict(findings, f"no secret on the command line or in the environment of {len(host.processes)} processes",
                   "secrets are visible on command lines (ps) or in process environments")


def exposures(facts: Facts, units: tuple[str, ...] = ()) -> dict[str, float]:
    """The exposure of every loaded unit, or of ``units`` by name (also when installed but not loaded: a
    oneshot unit such as iact-audit.service is loaded only while it runs)."""
    def gather() -> dict[str, float]:
        argv = ["systemd-analyze", "security", "--no-pager", *units] if units else \
            ["systemd-analyze", "security", "--json=short", "--no-pager"]
        try:
            out = facts.host.run(argv)
        except CommandFailed as exc:
            raise FactUnavailable(f"systemd-analyze: {exc}") from None
        if out.returncode != 0:
            raise FactUnavailable(f"systemd-analyze security failed: {out.first_error_line}")
        found = parsers.parse_overall_exposures(out.stdout) if units else parsers.parse_exposures(out.stdout)
        if not found:
            raise FactUnavailable("systemd-analyze security listed no unit (output not understood)")
        return found

    return facts.memo("units.exposure." + ",".join(units), gather)


def judge_unit_exposure(facts: Facts) -> Outcome:
    limits = facts.cfg.units.max_exposure
    here = {u: v for u, v in limits.items() if facts.has_unit(u)}
    if not here:
        return not_applicable(f"none of the units with a documented score is installed here ({', '.join(limits)})"
                              if limits else "no unit score is documented in the configuration (units.max_exposure)")
    seen = exposures(facts)
    unloaded = tuple(sorted(u for u in here if u not in seen))
    if unloaded:
        seen = {**seen, **exposures(facts, unloaded)}
    findings = []
    for unit, limit in sorted(here.items()):
        if unit not in seen:
            findings.append(f"{unit}: not loaded, no score")
        elif seen[unit] > limit:
            findings.append(f"{unit}: exposure {seen[unit]:.1f} > documented {limit:.1f}")
    shown = ", ".join(f"{u} {seen[u]:.1f} <= {here[u]:.1f}" for u in sorted(here) if u in seen)
    return verdict(findings, f"systemd-analyze security: {shown}", "units are more exposed than documented")


CHECKS: tuple[Check, ...] = (
    Check("files.credentials", "Every credential file at most 0640, with an allowed owner and group", STYLE_SECRETS,
          Severity.HIGH, Scope.HOST, judge_credentials),
    Check("process.cmdline_secrets", "No password on any process's command line (or in its environment)",
          f"{STYLE_SECRETS}; dev-sec mysql-conf-09", Severity.CRITICAL, Scope.HOST, judge_cmdline_secrets),
    Check("systemd.exposure", "systemd units at or below their documented `systemd-analyze security` score",
          "project rule (issue 14: unit hardening, scores in each role's README)", Severity.MEDIUM, Scope.HOST,
          judge_unit_exposure),
)
