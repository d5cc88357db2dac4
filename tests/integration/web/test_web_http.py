"""The site as a client sees it, from the controller: TLS answered with the lab CA, plain HTTP redirected,
security headers and secure cookies. Traffic goes only to the web host's own address."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import pytest
import requests
from web_testlib import Site

TIMEOUT = 10


def _session(site: Site) -> requests.Session:
    session = requests.Session()
    session.verify = str(site.ca)
    # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment would replace session.verify (requests merges
    # the environment over the session): only the lab CA may decide here.
    session.trust_env = False
    return session


def _tls_socket(site: Site, context: ssl.SSLContext) -> ssl.SSLSocket:
    port = urlsplit(site.url).port or 443
    raw = socket.create_connection((site.address, port), timeout=TIMEOUT)
    return context.wrap_socket(raw, server_hostname=site.address)


def test_tls_is_answered_with_a_certificate_of_the_lab_ca(site: Site) -> None:
    context = ssl.create_default_context(cafile=str(site.ca))
    with _tls_socket(site, context) as tls:
        cert = tls.getpeercert()
        version = tls.version()
    issuer = dict(pair[0] for pair in cert["issuer"])
    assert issuer["commonName"] == "IACT lab CA"
    assert ("IP Address", site.address) in cert["subjectAltName"] or ("DNS", site.address) in cert["subjectAltName"]
    assert version in {"TLSv1.2", "TLSv1.3"}


def test_tls_is_not_trusted_without_the_lab_ca(site: Site) -> None:
    """The check above proves something: the system's trust store alone refuses the certificate."""
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(site.url, timeout=TIMEOUT)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_old_tls_versions_are_refused(site: Site) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(site.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _tls_socket(site, context).close()


def test_plain_http_is_redirected_to_https(site: Site) -> None:
    answer = requests.get(f"http://{site.address}/api/v1/dora?window=30", allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 301
    assert answer.headers["Location"] == f"https://{site.address}/api/v1/dora?window=30"


def test_a_page_carries_the_security_headers_and_secure_cookies(site: Site) -> None:
    """Anonymous: the site sends the login page (login is required everywhere)."""
    session = _session(site)
    answer = session.get(site.url, timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.history and answer.history[0].status_code == 302, "the dashboard did not require a login"
    headers = answer.headers
    hsts = headers["Strict-Transport-Security"]
    assert int(hsts.split("max-age=")[1].split(";")[0]) >= 15552000, hsts
    csp = headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}
    script_src = directives.get("script-src", directives.get("default-src", []))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, csp
    assert "'self'" in script_src, csp
    assert directives.get("frame-ancestors") == ["'none'"] or headers.get("X-Frame-Options") == "DENY", csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] in {"same-origin", "strict-origin-when-cross-origin", "no-referrer"}
    assert headers["Server"] == "nginx", "nginx must not tell its version (server_tokens off)"
    cookies = {c.name: c for c in session.cookies}
    assert cookies, "the login page set no CSRF cookie"
    for cookie in cookies.values():
        assert cookie.secure, f"cookie {cookie.name} lacks the Secure flag"


def test_login_sets_a_secure_http_only_session_cookie(site: Site) -> None:
    session = _session(site)
    login_page = session.get(site.url, timeout=TIMEOUT)
    csrf = next(c.value for c in session.cookies if "csrf" in c.name)
    user = site.viewer or site.superuser
    answer = session.post(
        login_page.url,
        data={"username": user, "password": site.users[user], "csrfmiddlewaretoken": csrf},
        headers={"Referer": login_page.url},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 302, answer.text[:500]
    set_cookies = answer.raw.headers.getlist("Set-Cookie")
    session_cookie = [c for c in set_cookies if "session" in c.split("=", 1)[0]]
    assert session_cookie, set_cookies
    flags = {f.strip().lower() for f in session_cookie[0].split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax"} <= flags, session_cookie


def test_static_files_come_from_nginx_with_headers(site: Site) -> None:
    answer = requests.get(f"{site.url}static-floor.txt", verify=str(site.ca), timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "Strict-Transport-Security" in answer.headers


def test_an_unknown_host_name_is_not_served_as_the_site(site: Site) -> None:
    """Django's ALLOWED_HOSTS: a forged Host header gets a 400, never the site."""
    answer = requests.get(site.url, headers={"Host": "evil.example"}, verify=str(site.ca), timeout=TIMEOUT,
                          allow_redirects=False)
    assert answer.status_code == 400
