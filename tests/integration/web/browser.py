"""Debian's chromium driven by Debian's chromedriver through Selenium, for the browser test and bench/web.

Nothing is downloaded at run time: the binaries' paths are given, and Selenium's manager is kept offline
(SE_OFFLINE) and quiet (SE_AVOID_STATS). The lab CA is trusted the way a person's browser would trust it:
imported with certutil into the NSS database of a throw-away profile home, never by turning checks off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CERTUTIL = Path("/usr/bin/certutil")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in a container or CI: chromium's sandbox needs an unprivileged user
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1366,900",
    # Traffic only to the site under test: no background, update, sync or metrics requests.
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
)


class BrowserMissing(RuntimeError):
    """Debian's chromium, chromium-driver or certutil is not installed (`make browser` installs them)."""


def missing() -> list[str]:
    return [str(p) for p in (CHROMIUM, CHROMEDRIVER, CERTUTIL) if not p.exists()]


@contextmanager
def chromium(ca: Path, downloads: Path | None = None) -> Iterator[webdriver.Chrome]:
    """A headless chromium that trusts ``ca`` (PEM) and saves downloads into ``downloads``."""
    absent = missing()
    if absent:
        raise BrowserMissing(f"not installed: {', '.join(absent)}; run `make browser` (Debian packages)")
    home = Path(tempfile.mkdtemp(prefix="iact-chromium."))
    try:
        nssdb = home / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        subprocess.run([str(CERTUTIL), "-N", "--empty-password", "-d", f"sql:{nssdb}"], check=True,
                       capture_output=True)
        subprocess.run([str(CERTUTIL), "-A", "-n", "IACT lab CA", "-t", "C,,", "-i", str(ca), "-d", f"sql:{nssdb}"],
                       check=True, capture_output=True)
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={home / 'profile'}")
        if downloads is not None:
            # Resolved: chromium never completes a download into a path with '..' in it (verify.yml's output
            # folder is <scenario>/../../tests/output): it stayed a .crdownload while the server had answered.
            downloads = downloads.resolve()
            downloads.mkdir(parents=True, exist_ok=True)
            # Safe Browsing off: with background networking off its download check could only wait for a
            # verdict that cannot come (the stalled export was the '..' path above; this is a precaution).
            options.add_experimental_option("prefs", {
                "download.default_directory": str(downloads),
                "download.prompt_for_download": False,
                "download.directory_upgrade": True,
                "safebrowsing.enabled": False,
                "safebrowsing.disable_download_protection": True,
            })
        env = {**os.environ, "HOME": str(home), "SE_OFFLINE": "true", "SE_AVOID_STATS": "true"}
        os.environ["SE_OFFLINE"] = "true"  # the Selenium manager reads them in this process too
        os.environ["SE_AVOID_STATS"] = "true"
        service = Service(executable_path=str(CHROMEDRIVER), env=env)
        driver = webdriver.Chrome(options=options, service=service)
        try:
            if downloads is not None:
                driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow",
                                                                       "downloadPath": str(downloads)})
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(home, ignore_errors=True)
