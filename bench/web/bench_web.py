#!/usr/bin/env python3
"""Web layer benchmark: API latency through nginx and the dashboard's time to its first chart, each beside
nginx serving a static file (the floor), in the same run. Not a test: it writes numbers, it asserts none.

1. API: p50/p95/p99 (ms) of the main endpoints at 1, 8 and 32 concurrent clients, measured with `hey`
   (Debian) from the controller, authenticated as the inventory's `bench` API client (raised limits, so
   the app's limiter accepts every request; it still counts each one in MariaDB). The floor is
   /static-floor.txt, which nginx serves without the app, at the same concurrency.
2. Dashboard: milliseconds from navigation start until the dashboard's charts are drawn (its script sets
   `data-charts-drawn` on <body> once Chart.js has drawn them; a MutationObserver installed before the page's
   own scripts records the instant), in Debian's chromium, logged in, warm; the floor is the same browser
   loading /static-floor.txt (responseEnd).

Requests go only to the web host of the inventory (a lab host's address), in bounded counts.
Writes ``bench/results/web-<UTC time>.json`` (and prints it).

    .venv/bin/python bench/web/bench_web.py --inventory inventory/lab --force-ansible
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration" / "web"))

from browser import chromium  # noqa: E402  (shared with the browser test)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from web_testlib import Site, discover_site  # noqa: E402

ENDPOINTS = (
    "api/v1/dora/metrics?window=30",
    "api/v1/deployments?window=30",
    "api/v1/health",
    "api/v1/alerts",
    "api/v1/live",
)
FLOOR = "static-floor.txt"
LEVELS = (1, 8, 32)
# Requests per (target, level): bounded, and enough for a p99 (at least 100 answers behind it).
REQUESTS = {1: 150, 8: 400, 32: 640}

# Installed before any script of the page runs (CDP), so it sees the moment the page's own script marks the
# charts drawn; the CSP does not apply to what the browser's automation injects.
OBSERVER = """
window.__iactChartsDrawnAt = null;
new MutationObserver(function (records, obs) {
  if (document.body && document.body.hasAttribute('data-charts-drawn')) {
    window.__iactChartsDrawnAt = performance.now();
    obs.disconnect();
  }
}).observe(document, {attributes: true, subtree: true, attributeFilter: ['data-charts-drawn']});
"""


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1), "p99_ms": round(q[98], 1),
            "max_ms": round(ordered[-1], 1)}


def hey(site: Site, path: str, concurrency: int, token: str | None) -> dict[str, Any]:
    argv = ["hey", "-n", str(REQUESTS[concurrency]), "-c", str(concurrency), "-t", "30", "-o", "csv",
            "-H", "Accept: application/json"]
    if token:
        argv += ["-H", f"Authorization: Token {token}"]
    # hey is Go: it trusts SSL_CERT_FILE, here the lab CA only (TLS is verified, not skipped).
    env = {**os.environ, "SSL_CERT_FILE": str(site.ca)}
    done = subprocess.run([*argv, site.url + path], capture_output=True, text=True, env=env, timeout=600,
                          check=True)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    codes: dict[str, int] = {}
    for r in rows:
        codes[r["status-code"]] = codes.get(r["status-code"], 0) + 1
    # Latency of the answers that did the work: a 429 (nginx's shield) is fast and says nothing about the app.
    times = [float(r["response-time"]) * 1000 for r in rows if r["status-code"].startswith("2")]
    if len(times) < 20:
        return {"requests": len(rows), "status": codes, "note": "too few 2xx answers for percentiles"}
    return {"requests": len(rows), "status": codes, "answers_2xx": len(times), **percentiles(times)}


def bench_api(site: Site, token: str, pause_s: float) -> dict[str, Any]:
    """One address sends everything, so nginx's per-address shield (web_nginx_limit_rate/_burst) would answer
    429 past its burst; a pause between targets lets its bucket drain, and 429s are counted, never timed."""
    out: dict[str, Any] = {}
    for level in LEVELS:
        row: dict[str, Any] = {"floor": hey(site, FLOOR, level, None)}
        for path in ENDPOINTS:
            time.sleep(pause_s)
            row[path] = hey(site, path, level, token)
            if "p95_ms" in row[path]:
                row[path]["p95_vs_floor"] = round(row[path]["p95_ms"] / max(row["floor"]["p95_ms"], 0.1), 1)
        out[f"c{level}"] = row
        print(f"api at {level} client(s): " + ", ".join(
            f"{k.split('?')[0]} p95 {v.get('p95_ms')} ms" for k, v in row.items()), file=sys.stderr)
    return out


def bench_dashboard(site: Site, runs: int) -> dict[str, Any]:
    user = site.viewer or site.superuser
    drawn: list[float] = []
    html: list[float] = []
    floor: list[float] = []
    with chromium(site.ca) as driver:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVER})
        driver.get(site.url + "login/")
        driver.find_element(By.ID, "id_username").send_keys(user)
        driver.find_element(By.ID, "id_password").send_keys(site.users[user])
        driver.find_element(By.CSS_SELECTOR, "section.login button[type=submit]").click()
        WebDriverWait(driver, 30).until(lambda d: "/dora/" in d.current_url)
        for i in range(runs + 1):  # the first load warms the caches and is not counted
            driver.get(site.url + "dora/")
            at = WebDriverWait(driver, 30).until(lambda d: d.execute_script("return window.__iactChartsDrawnAt"))
            response_end = driver.execute_script("return performance.getEntriesByType('navigation')[0].responseEnd")
            driver.get(site.url + FLOOR)
            floor_end = driver.execute_script("return performance.getEntriesByType('navigation')[0].responseEnd")
            if i:
                drawn.append(float(at))
                html.append(float(response_end))
                floor.append(float(floor_end))
    return {
        "runs": runs,
        "first_chart_drawn_ms": {"median": round(statistics.median(drawn), 1), "max": round(max(drawn), 1)},
        "dashboard_html_response_end_ms": {"median": round(statistics.median(html), 1), "max": round(max(html), 1)},
        "floor_static_response_end_ms": {"median": round(statistics.median(floor), 1), "max": round(max(floor), 1)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default=str(REPO / "inventory" / "lab"))
    parser.add_argument("--force-ansible", action="store_true", help="reach the hosts through Ansible (the lab)")
    parser.add_argument("--dashboard-runs", type=int, default=10)
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--pause", type=float, default=8.0,
                        help="seconds between API targets, for nginx's shield to drain (burst 400 at 50/s: 8 s)")
    args = parser.parse_args()
    if shutil.which("hey") is None and not args.skip_api:
        print("bench/web needs hey (Debian package): make browser installs it", file=sys.stderr)
        return 2
    site = discover_site(args.inventory, force_ansible=args.force_ansible)
    if "bench" not in site.tokens:
        print("the inventory has no API client named 'bench' (inventory/lab/group_vars/web)", file=sys.stderr)
        return 2
    result: dict[str, Any] = {
        "bench": "web",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "site": site.url,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "targets": {"api_p95_ms_at_8_clients": 200, "dashboard_first_chart_ms": 2000},
    }
    if not args.skip_api:
        result["api"] = bench_api(site, site.tokens["bench"], args.pause)
    result["dashboard"] = bench_dashboard(site, args.dashboard_runs)
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    c8 = {k: v for k, v in result.get("api", {}).get("c8", {}).items() if k != "floor"}
    result["verdict"] = {
        "api_p95_at_8_clients_ms": {k: v.get("p95_ms") for k, v in c8.items()},
        "api_p95_under_200ms_at_8_clients": all(v.get("p95_ms", 1e9) < 200 for v in c8.values()) if c8 else None,
        "dashboard_under_2s": result["dashboard"]["first_chart_drawn_ms"]["max"] < 2000,
    }
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"web-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    text = json.dumps(result, indent=2)
    path.write_text(text + "\n")
    print(text)
    print(f"written: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
