"""RNF-002 on the running host: forbidden software, outside mail relays, and schedulers other than cron/systemd.

A :class:`Signature` says how a forbidden product shows on a host: Debian packages, programs in the PATH or a
virtualenv's ``bin/``, Python distributions or modules in any virtualenv or system site folder, processes,
listening TCP ports, unit files and init scripts. One definition per product; every source is looked at and
every match is a finding, so the evidence says where it was seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase

from . import parsers
from .facts import Facts, FactUnavailable
from .host import Venv
from .model import Check, Outcome, Scope, Severity, verdict

RNF002 = "RNF-002 (project rule: no external dependencies)"


@dataclass(frozen=True)
class Signature:
    product: str
    packages: tuple[str, ...] = ()
    """Debian package name patterns (fnmatch)."""
    programs: tuple[str, ...] = ()
    """Program name patterns in the PATH and in every virtualenv's ``bin/``."""
    python: tuple[str, ...] = ()
    """Normalised Python distribution or top-level module names, in any virtualenv or system site folder."""
    processes: tuple[str, ...] = ()
    """Process name patterns (``comm``, ``argv[0]``, or what an interpreter runs)."""
    ports: tuple[int, ...] = ()
    """TCP ports the product listens on by default."""
    units: tuple[str, ...] = ()
    """Unit file and init script name patterns."""


def _match(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatchcase(name, p) for p in patterns)


def venvs(facts: Facts) -> list[Venv]:
    """Every virtualenv and system site folder (an incomplete search is a fact not gathered)."""
    cfg = facts.cfg.software

    def gather() -> list[Venv]:
        found, complete = facts.host.venvs(cfg.venv_roots, cfg.venv_skip, cfg.venv_max_depth, cfg.venv_max_dirs)
        if not complete:
            raise FactUnavailable(f"virtualenv search stopped after {cfg.venv_max_dirs} folders "
                                  f"(software.venv_max_dirs): not every environment was seen")
        return found

    return facts.memo("venvs", gather)


def path_programs(facts: Facts) -> dict[str, str]:
    """Programs of the PATH folders: name -> the first folder that has it."""

    def gather() -> dict[str, str]:
        found: dict[str, str] = {}
        for folder in facts.cfg.software.path:
            for name in sorted(facts.host.executables(folder)):
                found.setdefault(name, folder)
        return found

    return facts.memo("path_programs", gather)


def _installed(sig: Signature, facts: Facts) -> Iterator[str]:
    """Packages, programs and Python packages of ``sig`` installed on the host."""
    for name, version in sorted(facts.host.packages.items()):
        if _match(name, sig.packages):
            yield f"package {name} {version} installed"
    for name, folder in sorted(path_programs(facts).items()):
        if _match(name, sig.programs):
            yield f"program {folder}/{name}"
    for env in venvs(facts):
        yield from (f"Python package {n} in {env.path}" for n in sorted(env.packages) if n in sig.python)
        yield from (f"program {env.path}/bin/{n}" for n in sorted(env.bin_names) if _match(n, sig.programs))


def _running(sig: Signature, facts: Facts) -> Iterator[str]:
    """Processes, listening ports and unit files of ``sig``."""
    host = facts.host
    for proc in host.processes:
        if any(_match(n, sig.processes) for n in proc.names):
            yield f"process {proc.describe(host.users)}"
    for listener in host.listeners:
        if listener.port in sig.ports:
            owner = host.owner_of(listener)
            yield f"port {listener} listened on by {owner.describe(host.users) if owner else 'an unknown process'}"
    for unit, folder in sorted(host.unit_files.items()):
        if _match(unit, sig.units):
            yield f"unit file {folder}/{unit}"


def signature_findings(sig: Signature, facts: Facts) -> list[str]:
    return [*_installed(sig, facts), *_running(sig, facts)]


def forbid(sig: Signature) -> Check:
    """The check that ``sig`` is nowhere on the host."""
    key = sig.product.lower().split()[0]

    def judge(facts: Facts) -> Outcome:
        findings = signature_findings(sig, facts)
        where = "packages, PATH, virtualenvs, processes, listening ports, unit files"
        return verdict(findings, f"no trace of {sig.product} ({where})", f"{sig.product} found on the host")

    return Check(f"rnf002.{key}", f"No {sig.product}", RNF002, Severity.HIGH, Scope.HOST, judge)


# rnf-002: allowed mention (the products below are named only to forbid them)
FORBIDDEN: tuple[Signature, ...] = (
    Signature(
        "Redis",  # rnf-002: allowed mention
        packages=("redis*", "valkey*", "keydb*"),  # rnf-002: allowed mention
        programs=("redis-*", "valkey-*", "keydb-*"),  # rnf-002: allowed mention
        python=("redis", "django-redis", "hiredis", "valkey"),  # rnf-002: allowed mention
        processes=("redis-*", "valkey-*", "keydb-*"),  # rnf-002: allowed mention
        ports=(6379, 26379),
        units=("redis*", "valkey*", "keydb*"),  # rnf-002: allowed mention
    ),
    Signature(
        "Prometheus or its exporters",  # rnf-002: allowed mention
        packages=("prometheus*", "*-exporter", "*_exporter"),  # rnf-002: allowed mention
        programs=("prometheus*", "promtool", "*_exporter", "alertmanager", "pushgateway"),  # rnf-002: allowed mention
        python=("prometheus-client", "prometheus-flask-exporter", "django-prometheus"),  # rnf-002: allowed mention
        processes=("prometheus*", "*_exporter", "*-exporter", "alertmanager", "pushgateway",  # rnf-002: allowed mention
                   "jmx_prometheus_javaagent*"),  # rnf-002: allowed mention
        ports=(9090, 9091, 9093, 9094, 9100, 9104),
        units=("prometheus*", "*exporter*", "alertmanager*", "pushgateway*"),  # rnf-002: allowed mention
    ),
    Signature(
        "Grafana",  # rnf-002: allowed mention
        packages=("grafana*",),  # rnf-002: allowed mention
        programs=("grafana*",),  # rnf-002: allowed mention
        python=("grafana-client", "grafanalib"),  # rnf-002: allowed mention
        processes=("grafana*",),  # rnf-002: allowed mention
        ports=(3000,),
        units=("grafana*",),  # rnf-002: allowed mention
    ),
    Signature(
        "Celery",  # rnf-002: allowed mention
        packages=("python3-celery*", "celery*"),  # rnf-002: allowed mention
        programs=("celery",),  # rnf-002: allowed mention
        python=("celery", "django-celery-beat", "django-celery-results", "flower"),  # rnf-002: allowed mention
        processes=("celery",),  # rnf-002: allowed mention
        units=("celery*",),  # rnf-002: allowed mention
    ),
)
SCHEDULERS = Signature(
    "scheduler other than cron and systemd",
    packages=("at", "fcron", "bcron", "jobber", "supercronic"),
    programs=("atd", "fcron", "bcron-sched", "jobberrunner", "supercronic", "airflow"),
    python=("apscheduler", "apache-airflow", "rq-scheduler", "dramatiq-crontab"),
    processes=("atd", "fcron", "bcron-sched", "jobberrunner", "supercronic", "airflow"),
    units=("atd.service", "fcron*", "bcron*", "jobber*", "supercronic*", "airflow*"),
)


# --- mail: local delivery only ----------------------------------------------------------------------

SMTP_PORTS = (25, 465, 587)
EXIM_RELAY_SETTING = "dc_smarthost"  # rnf-002: allowed mention (Debian's exim4 relay host setting)
EXIM_RELAY_MACRO = "DCsmarthost"  # rnf-002: allowed mention (the same, in the generated configuration)
# Other mail senders' files and the key naming their relay (None: every line is a relay, as in nullmailer's).
_RELAY_FILES = (("/etc/nullmailer/remotes", None), ("/etc/msmtprc", "host"), ("/etc/ssmtp/ssmtp.conf", "mailhub"),
                ("/etc/dma/dma.conf", "smarthost"))  # rnf-002: allowed mention
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[127.0.0.1]", "[::1]")


def _relays(text: str, key: str | None) -> list[str]:
    found = []
    for line in text.splitlines():
        words = line.replace("=", " ", 1).split()
        if not words or words[0].startswith("#"):
            continue
        if key is None:
            target = words[0]
        elif words[0].lower() == key and len(words) > 1:
            target = words[1]
        else:
            continue
        if target.split(":")[0].lower() not in _LOCAL_HOSTS:
            found.append(target[:80])
    return found


def _exim_findings(facts: Facts) -> Iterator[str]:
    """Debian's exim4: the configuration to generate, and the generated one the daemon runs with."""
    for path, type_key, relay_key, what in (
            ("/etc/exim4/update-exim4.conf.conf", "dc_eximconfig_configtype", EXIM_RELAY_SETTING, "exim4"),
            ("/var/lib/exim4/config.autogenerated", "DC_eximconfig_configtype", EXIM_RELAY_MACRO,
             "the running exim4 configuration")):
        text = facts.host.read_text(path)
        if text is None:
            continue
        values = (parsers.parse_shell_assignments if path.startswith("/etc") else parsers.parse_exim_macros)(text)
        kind = values.get(type_key, "")
        if kind not in ("local", "none", ""):
            yield f"{what} is of type {kind!r}, not local delivery ({path})"
        if values.get(relay_key):
            yield f"{what} relays through {values[relay_key]!r} ({relay_key}, {path})"


def _other_mta_findings(facts: Facts) -> Iterator[str]:
    host = facts.host
    postfix = host.read_text("/etc/postfix/main.cf")
    if postfix is not None:
        main = parsers.parse_postfix_main_cf(postfix)
        if main.get("relayhost"):
            yield f"postfix relays through {main['relayhost']!r} (relayhost, /etc/postfix/main.cf)"
        transport = main.get("default_transport", "smtp").split(":", 1)[0]
        if transport in ("smtp", "lmtp", "relay"):
            yield f"postfix delivers remote mail itself (default_transport {transport}, /etc/postfix/main.cf)"
    for path, key in _RELAY_FILES:
        yield from (f"{path} sends mail to {relay!r}" for relay in _relays(host.read_text(path) or "", key))
    for listener in host.listeners:
        if listener.port in SMTP_PORTS and not listener.loopback:
            owner = host.owner_of(listener)
            yield f"an MTA listens on {listener}" + (f" ({owner.describe(host.users)})" if owner else "")


def judge_mail(facts: Facts) -> Outcome:
    findings = [*_exim_findings(facts), *_other_mta_findings(facts)]
    return verdict(findings, "mail is delivered locally only (no relay host, no direct delivery, MTA on loopback)",
                   "mail could leave this host")


CHECKS: tuple[Check, ...] = (
    *(forbid(sig) for sig in FORBIDDEN),
    Check("rnf002.smtp_relay", "No external SMTP relay: the MTA delivers locally only", RNF002, Severity.HIGH,
          Scope.HOST, judge_mail),
)
SCHEDULER_CHECK = Check("rnf002.schedulers", "Schedules only in cron and systemd (no other scheduler)", RNF002,
                        Severity.HIGH, Scope.HOST, forbid(SCHEDULERS).judge)
