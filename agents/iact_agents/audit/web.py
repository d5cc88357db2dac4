"""The web layer: its deployed Django settings (RNF-002: sessions in the database, no cache server) and how
the running site answers (DEBUG off, CSRF on, security headers, secure cookies, escaped output).

The settings are read, never imported: the unit's ``ExecStart`` names the virtualenv and the WSGI module, the
unit's environment (or the WSGI module's default) names the settings module, whose top-level literals are read
with :func:`~.parsers.settings_literals`. The site's own configuration file (``IACT_WEB_CONFIG``) gives what
the settings compute from it (``debug``, ``secure_cookies``). The running site is asked over HTTPS on the local
front end with the site's name: two GET requests and one POST without a CSRF token, which it must refuse.
"""

from __future__ import annotations

import http.client
import re
import secrets
import socket
import ssl
import tomllib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from ..health.checks import CommandFailed
from . import parsers
from .facts import Facts, FactUnavailable
from .model import Check, Outcome, Scope, Severity, error, failed, passed, verdict
from .software import RNF002

OWASP = "OWASP ASVS 4.0"
SETTINGS = ("SESSION_ENGINE", "CACHES", "DEBUG", "MIDDLEWARE", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE")
DB_SESSIONS = "django.contrib.sessions.backends.db"
LOCAL_CACHES = frozenset({
    "django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache",
    "django.core.cache.backends.db.DatabaseCache", "django.core.cache.backends.filebased.FileBasedCache"})
CSRF_MIDDLEWARE = "django.middleware.csrf.CsrfViewMiddleware"


@dataclass(frozen=True)
class Deployed:
    settings_module: str
    settings_path: str
    settings: dict[str, Any]
    config_path: str | None
    config: dict[str, Any]


def _site_packages(facts: Facts, venv: str) -> list[str]:
    return [f"{venv}/lib/{d}/site-packages" for d in facts.host.listdir(f"{venv}/lib") if d.startswith("python")]


def _module_file(facts: Facts, venv: str, module: str) -> str | None:
    rel = module.replace(".", "/")
    for site in _site_packages(facts, venv):
        for candidate in (f"{site}/{rel}.py", f"{site}/{rel}/__init__.py"):
            if facts.host.stat(candidate) is not None:
                return candidate
    return None


def deployed(facts: Facts) -> Deployed:
    unit = facts.cfg.web.unit

    def gather() -> Deployed:
        try:
            out = facts.host.run(["systemctl", "show", "-p", "Environment", "-p", "ExecStart", unit])
        except CommandFailed as exc:
            raise FactUnavailable(f"systemctl show {unit}: {exc}") from None
        props = parsers.parse_systemctl_properties(out.stdout)
        program = parsers.exec_start_path(props.get("ExecStart", ""))
        if out.returncode != 0 or program is None:
            raise FactUnavailable(f"{unit}: no ExecStart ({out.first_error_line if out.returncode else 'empty'})")
        venv = str(PurePosixPath(program).parent.parent)
        env = parsers.unit_environment(props.get("Environment", ""))
        module = env.get("DJANGO_SETTINGS_MODULE")
        if module is None:
            wsgi = re.search(r"([\w.]+):\w+", props.get("ExecStart", "").split("argv[]=", 1)[-1])
            wsgi_file = _module_file(facts, venv, wsgi.group(1)) if wsgi else None
            source = facts.host.read_text(wsgi_file) if wsgi_file else None
            module = parsers.settings_module_default(source or "")
        if module is None:
            raise FactUnavailable(f"{unit}: no DJANGO_SETTINGS_MODULE in its environment or its WSGI module")
        path, settings = _settings(facts, venv, module, depth=0)
        config_path = env.get("IACT_WEB_CONFIG")
        config: dict[str, Any] = {}
        if config_path:
            text = facts.host.read_text(config_path)
            try:
                config = tomllib.loads(text) if text is not None else {}
            except tomllib.TOMLDecodeError as exc:
                raise FactUnavailable(f"{config_path}: not valid TOML: {exc}") from None
        return Deployed(module, path, settings, config_path, config)

    return facts.memo("web.deployed", gather)


def _settings(facts: Facts, venv: str, module: str, depth: int) -> tuple[str, dict[str, Any]]:
    """The settings a module ends up with: those of the modules it star-imports first (up to 5 levels deep),
    then its own top-level literals. The module's file is returned with them."""
    path = _module_file(facts, venv, module)
    source = facts.host.read_text(path) if path else None
    if path is None or source is None:
        raise FactUnavailable(f"settings module {module} not found in {venv}")
    values: dict[str, Any] = {}
    package = module if path.endswith("/__init__.py") else module.rpartition(".")[0]
    for base in parsers.star_imports(source, package):
        if depth >= 5:
            raise FactUnavailable(f"{path}: star imports nested deeper than 5 modules")
        values.update(_settings(facts, venv, base, depth + 1)[1])
    values.update(parsers.settings_literals(source, SETTINGS))
    return path, values


def _server_setting(d: Deployed, name: str) -> Any:
    server = d.config.get("server")
    return server.get(name) if isinstance(server, dict) else None


# --- HTTP probes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]


class _Connection(http.client.HTTPSConnection):
    """HTTPS to ``address`` with the site's name in TLS (SNI, certificate check) and in ``Host``."""

    def __init__(self, name: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(name, port, timeout=timeout, context=context)
        self._address = address
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)


def _context(facts: Facts) -> ssl.SSLContext:
    trust = facts.cfg.web.trust_file
    ctx = ssl.create_default_context(cafile=str(trust) if trust else None)
    if trust:
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the served certificate itself may be the anchor
    return ctx


def request(facts: Facts, method: str, path: str, body: str | None = None) -> Response:
    cfg = facts.cfg.web
    url = urlsplit(cfg.url)
    if url.scheme != "https" or not url.hostname:
        raise FactUnavailable(f"web.url {cfg.url!r} is not an https:// URL")
    conn = _Connection(url.hostname, url.port or 443, cfg.connect_address, cfg.timeout_s, _context(facts))
    headers = {"User-Agent": "iact-audit", "Accept": "text/html"}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["Referer"] = cfg.url  # Django checks the referer of HTTPS posts before the token
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read(1 << 20).decode("utf-8", "replace")
        return Response(resp.status, resp.getheaders(), text)
    except ssl.SSLError as exc:
        raise FactUnavailable(f"{cfg.url}: TLS failed: {exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise FactUnavailable(f"{cfg.url} via {cfg.connect_address}: {exc}") from None
    finally:
        conn.close()


MARKER_TAG = "<script>iact_audit_{}</script>"


def missing_page(facts: Facts) -> Response:
    """A page that does not exist (Django's debug 404 page lists the URL patterns)."""
    return facts.memo("web.missing", lambda: request(facts, "GET", f"/iact-audit-{secrets.token_hex(4)}/"))


def post_without_token(facts: Facts) -> Response:
    """The login form posted without a CSRF token and without a password (nobody can be logged in by it)."""
    return facts.memo("web.post", lambda: request(facts, "POST", facts.cfg.web.login_path,
                                                   body="username=iact-audit&password="))


def login_page(facts: Facts) -> tuple[Response, str]:
    """The login page, with a script tag in the reflected parameter; the tag sent."""

    def gather() -> tuple[Response, str]:
        tag = MARKER_TAG.format(secrets.token_hex(4))
        cfg = facts.cfg.web
        return request(facts, "GET", f"{cfg.login_path}?{cfg.reflect_parameter}={quote(tag)}"), tag

    return facts.memo("web.login", gather)


# --- judges ------------------------------------------------------------------------------------------


def judge_sessions(facts: Facts) -> Outcome:
    d = deployed(facts)
    engine = d.settings.get("SESSION_ENGINE", DB_SESSIONS)
    if isinstance(engine, parsers.NotLiteral):
        return error(f"SESSION_ENGINE in {d.settings_path} is computed ({engine.source}): cannot be judged")
    if engine == DB_SESSIONS:
        return passed(f"SESSION_ENGINE = {engine!r} ({d.settings_module})")
    return failed(f"sessions are not kept in the database ({d.settings_path})", [f"SESSION_ENGINE = {engine!r}"])


def judge_caches(facts: Facts) -> Outcome:
    d = deployed(facts)
    caches = d.settings.get("CACHES", {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}})
    if isinstance(caches, parsers.NotLiteral) or not isinstance(caches, dict):
        return error(f"CACHES in {d.settings_path} is not a literal mapping: cannot be judged")
    findings = []
    for alias, spec in caches.items():
        backend = spec.get("BACKEND") if isinstance(spec, dict) else None
        if backend not in LOCAL_CACHES:
            findings.append(f"CACHES[{alias!r}] BACKEND = {backend!r} (not a local backend)")
    shown = ", ".join(f"{a}: {s.get('BACKEND')}" for a, s in caches.items() if isinstance(s, dict))
    return verdict(findings, f"CACHES: {shown} ({d.settings_module})", "a cache server backend is configured")


def judge_debug(facts: Facts) -> Outcome:
    d = deployed(facts)
    findings = []
    if d.settings.get("DEBUG") is True:
        findings.append(f"DEBUG = True in {d.settings_path}")
    if _server_setting(d, "debug") is True:
        findings.append(f"[server] debug = true in {d.config_path}")
    resp = missing_page(facts)
    if "DEBUG = True" in resp.body or "technical_404" in resp.body:
        findings.append(f"a missing page answered Django's debug page (HTTP {resp.status})")
    return verdict(findings, f"DEBUG off: a missing page answered HTTP {resp.status} without debug output",
                   "DEBUG is on")


def judge_csrf(facts: Facts) -> Outcome:
    d = deployed(facts)
    findings = []
    middleware = d.settings.get("MIDDLEWARE")
    if isinstance(middleware, list) and CSRF_MIDDLEWARE not in middleware:
        findings.append(f"{CSRF_MIDDLEWARE} is not in MIDDLEWARE ({d.settings_path})")
    resp = post_without_token(facts)
    if resp.status != 403:
        findings.append(f"a POST without a CSRF token answered HTTP {resp.status}, not 403")
    return verdict(findings, f"a POST without a CSRF token is refused (HTTP {resp.status})",
                   "CSRF protection is off")


def judge_headers(facts: Facts) -> Outcome:
    resp, _ = login_page(facts)
    missing = [h for h in facts.cfg.web.required_headers if not resp.header(h)]
    nosniff = resp.header("X-Content-Type-Options")
    findings = [f"{h} missing" for h in missing]
    if nosniff and nosniff.strip().lower() != "nosniff":
        findings.append(f"X-Content-Type-Options: {nosniff}")
    return verdict(findings, f"{facts.cfg.web.login_path} (HTTP {resp.status}) sends "
                   f"{', '.join(facts.cfg.web.required_headers)}", "security headers are missing")


def judge_cookies(facts: Facts) -> Outcome:
    d = deployed(facts)
    resp, _ = login_page(facts)
    findings = []
    if _server_setting(d, "secure_cookies") is False:
        findings.append(f"[server] secure_cookies = false in {d.config_path}")
    for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        if d.settings.get(name) is False:
            findings.append(f"{name} = False in {d.settings_path}")
    cookies = resp.cookies()
    for cookie in cookies:
        flags = {p.strip().split("=")[0].lower() for p in cookie.split(";")[1:]}
        name = cookie.split("=", 1)[0]
        if "secure" not in flags:
            findings.append(f"cookie {name} without Secure")
        if "httponly" not in flags and "csrf" not in name.lower():
            findings.append(f"cookie {name} without HttpOnly")
    if not cookies and not findings:
        return error(f"{facts.cfg.web.login_path} set no cookie (HTTP {resp.status}): nothing to judge")
    names = ", ".join(c.split("=", 1)[0] for c in cookies)
    return verdict(findings, f"cookies {names} are Secure (and HttpOnly)", "cookies may travel without TLS")


def judge_escaping(facts: Facts) -> Outcome:
    resp, tag = login_page(facts)
    escaped = tag.replace("<", "&lt;").replace(">", "&gt;")
    param = facts.cfg.web.reflect_parameter
    if tag in resp.body:
        return failed(f"a script tag sent in ?{param}= came back unescaped (HTTP {resp.status})", [tag])
    if escaped in resp.body or tag.replace("<", "&#x3C;") in resp.body:
        return passed(f"a script tag sent in ?{param}= came back escaped ({escaped[:40]}...)")
    return error(f"{facts.cfg.web.login_path} did not write ?{param}= back (HTTP {resp.status}): set "
                 "web.reflect_parameter to a parameter the page shows")


def _web(check_id: str, title: str, reference: str, severity: Severity, judge: Any) -> Check:
    return Check(check_id, title, reference, severity, Scope.WEB, judge)


RNF002_CHECKS: tuple[Check, ...] = (
    _web("rnf002.sessions_db", "Sessions in the database (SESSION_ENGINE)", RNF002, Severity.HIGH, judge_sessions),
    _web("rnf002.cache_backend", "No cache server backend (Django CACHES)", RNF002, Severity.HIGH, judge_caches),
)
CHECKS: tuple[Check, ...] = (
    _web("web.debug", "DEBUG off", f"{OWASP} V14.3.2; Django deployment checklist", Severity.HIGH, judge_debug),
    _web("web.csrf", "CSRF protection on", f"{OWASP} V4.2.2; Django CsrfViewMiddleware", Severity.HIGH, judge_csrf),
    _web("web.headers", "Security headers present (HSTS, CSP, nosniff, frame options, referrer policy)",
         f"{OWASP} V14.4", Severity.MEDIUM, judge_headers),
    _web("web.cookies", "Session and CSRF cookies Secure and HttpOnly", f"{OWASP} V3.4.1, V3.4.2", Severity.MEDIUM,
         judge_cookies),
    _web("web.escaping", "A script tag in a query parameter comes back escaped", f"{OWASP} V5.3.3 (XSS)",
         Severity.HIGH, judge_escaping),
)
