"""A person's tour of the site in a real browser (Debian's chromium, headless, through Selenium): log in,
open the DORA dashboard, change a filter, drill down from a number to the events behind it, export them
as CSV, open the log search. One screenshot per step under tests/output/web/screenshots/ (or
$IACT_TEST_OUTPUT_DIR/web/screenshots/), so a failure shows what a person would have seen.

Only the web host's own address is visited; chromium's background traffic is switched off (browser.py).
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait
from web_testlib import Site

WAIT_S = 30


class Tour:
    def __init__(self, driver: WebDriver, site: Site, shots: Path) -> None:
        self.driver, self.site, self.shots = driver, site, shots
        self.step = 0

    def shot(self, name: str) -> Path:
        self.step += 1
        path = self.shots / f"{self.step:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def wait(self, condition):  # type: ignore[no-untyped-def]
        return WebDriverWait(self.driver, WAIT_S).until(condition)

    def charts_drawn(self) -> int:
        value = self.wait(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-charts-drawn"))
        return int(value)


@pytest.fixture(scope="module")
def tour(site: Site) -> Iterator[Tour]:
    shots = site.output / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    with chromium(site.ca, downloads=site.output / "downloads") as driver:
        yield Tour(driver, site, shots)


@pytest.fixture(autouse=True)
def shot_on_failure(request: pytest.FixtureRequest, tour: Tour) -> Iterator[None]:
    """A failed step leaves a screenshot of what the browser showed (and its URL in the report)."""
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        path = tour.shot(f"failed-{request.node.name}")
        print(f"{request.node.name} failed at {tour.driver.current_url}; screenshot {path}")


def test_1_login(tour: Tour) -> None:
    d, site = tour.driver, tour.site
    d.get(site.url)
    tour.wait(ec.presence_of_element_located((By.ID, "id_username")))
    assert "/login/" in d.current_url, "the dashboard did not ask for a login"
    user = site.viewer or site.superuser
    d.find_element(By.ID, "id_username").send_keys(user)
    d.find_element(By.ID, "id_password").send_keys(site.users[user])
    tour.shot("login")
    d.find_element(By.CSS_SELECTOR, "section.login button[type=submit]").click()
    tour.wait(ec.url_contains("/dora/"))
    assert d.find_element(By.CSS_SELECTOR, ".who").text == user


def test_2_dashboard_draws_its_charts(tour: Tour) -> None:
    d = tour.driver
    assert tour.charts_drawn() == 4
    assert len(d.find_elements(By.CSS_SELECTOR, ".cards .card")) == 4
    # No error in the console: the CSP blocked nothing the page needs.
    errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    tour.shot("dashboard")


def test_3_change_the_service_filter(tour: Tour) -> None:
    d = tour.driver
    select = Select(d.find_element(By.CSS_SELECTOR, "form.filters select[name=service]"))
    services = [o.get_attribute("value") for o in select.options if o.get_attribute("value")]
    assert services, "no service to filter by: the lab's sample data are missing"
    select.select_by_value(services[0])
    d.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    tour.wait(ec.url_contains(f"service={services[0]}"))
    tour.charts_drawn()
    assert services[0] in d.find_element(By.TAG_NAME, "h1").text
    tour.shot("filtered")


def test_4_drill_down_totals_equal_the_number(tour: Tour) -> None:
    d = tour.driver
    link = d.find_element(By.CSS_SELECTOR, "a[data-count=deployments]")
    shown = int(re.match(r"\d+", link.text).group(0))  # type: ignore[union-attr]
    link.click()
    total = tour.wait(ec.presence_of_element_located((By.CSS_SELECTOR, ".total[data-total]")))
    assert int(total.get_attribute("data-total")) == shown
    rows = d.find_elements(By.CSS_SELECTOR, "table.data tbody tr")
    assert len(rows) == shown
    tour.shot("drilldown")


def test_5_export_the_table_as_csv(tour: Tour) -> None:
    d, downloads = tour.driver, tour.site.output / "downloads"
    for old in downloads.glob("*"):
        old.unlink()
    shown = int(d.find_element(By.CSS_SELECTOR, ".total[data-total]").get_attribute("data-total"))
    link = d.find_element(By.CSS_SELECTOR, "a.export")
    href = link.get_attribute("href")
    link.click()
    deadline = time.monotonic() + 2 * WAIT_S
    while time.monotonic() < deadline:
        done = [p for p in downloads.glob("*.csv")]
        if done and not list(downloads.glob("*.crdownload")):
            break
        time.sleep(0.2)
    else:
        # Which side stalled: the same URL fetched by the page itself (same session) says what the server sends.
        probe = d.execute_async_script(
            "const done = arguments[arguments.length - 1], t0 = performance.now();"
            "fetch(arguments[0]).then(r => r.text().then(b => done([r.status, b.length, performance.now() - t0])))"
            ".catch(e => done(['error', String(e), performance.now() - t0]));", href)
        pytest.fail(f"no CSV downloaded into {downloads} ({sorted(p.name for p in downloads.glob('*'))}); "
                    f"fetching {href} from the page: status, bytes, ms = {probe}")
    with done[0].open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) == shown + 1, f"{done[0]}: {len(rows) - 1} data rows, the page said {shown}"
    tour.shot("exported")


def test_6_log_search(tour: Tour) -> None:
    d = tour.driver
    d.find_element(By.LINK_TEXT, "Logs").click()
    tour.wait(ec.presence_of_element_located((By.CSS_SELECTOR, "form.filters input[name=host]")))
    hosts = [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#hosts option")]
    sources = [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#sources option")]
    host = tour.site.host if tour.site.host in hosts else (hosts[0] if hosts else tour.site.host)
    source = next((s for s in sources if s.endswith("syslog")), sources[0] if sources else "/var/log/syslog")
    d.find_element(By.NAME, "host").send_keys(host)
    d.find_element(By.NAME, "source").send_keys(source)
    d.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    tour.wait(lambda drv: drv.find_elements(By.CSS_SELECTOR, "p.range, p.error"))
    assert not d.find_elements(By.CSS_SELECTOR, "p.error"), d.find_element(By.CSS_SELECTOR, "p.error").text
    assert d.find_elements(By.CSS_SELECTOR, "table.data tbody tr, p.empty")
    tour.shot("logs")
