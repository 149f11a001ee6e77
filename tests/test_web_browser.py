"""The status page in a real browser: `harvestwatch serve` (gunicorn) on loopback, Debian's
Chromium driven by Playwright. What a person on the LAN would see: the harvester, the verdict
badge, the trigger rows; no console errors or CSP violations; a phone-sized screen without
sideways scrolling; the auto-refresh swapping the content in place; hostile strings shown as text,
never run. Screenshots go under pytest's tmp_path and are copied to /tmp/hw-screens/.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from appliance.store.db import Store
from tests import web_store as ws

CHROMIUM = "/usr/bin/chromium"
SCREENS = Path("/tmp/hw-screens")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                 reason=f"{CHROMIUM} is missing (apt-get install chromium; `make test` installs it)")]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


# -- the server ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PageServer:
    """`python -m appliance serve` on a loopback port, in its own process group."""

    def __init__(self, db_path: str, log_path: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "appliance", "serve", "--db", db_path, "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--threads", "2"],
            cwd=ws.ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_until_it_answers(deadline=time.monotonic() + 20)
        except BaseException:
            self.stop()
            raise

    def _wait_until_it_answers(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"harvestwatch serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/overview", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"harvestwatch serve did not answer within 20 s:\n{self.output()}")

    def get_json(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:
            return json.load(response)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # gunicorn's master stops its worker gracefully
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the group this test started, nothing else
                self.process.wait(timeout=5)
        self.log.close()


@pytest.fixture(scope="module")
def realistic_server(tmp_path_factory):
    work = tmp_path_factory.mktemp("page")
    db = work / "harvestwatch.sqlite"
    ws.fill_realistic_store(db)
    server = PageServer(str(db), work / "serve.log")
    try:
        yield server
    finally:
        server.stop()


# -- the browser -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            yield browser
        finally:
            browser.close()


# Every alert/confirm/prompt is recorded (and still opens its dialog, which the test records too),
# and every CSP violation the page reports: the init script runs before the page's own and is not
# subject to the page's CSP.
WATCH = """
window.__hw = {alerts: [], csp: []};
for (const name of ["alert", "confirm", "prompt"]) {
  const original = window[name];
  window[name] = function (message) {
    window.__hw.alerts.push(name + ": " + message);
    return original.call(window, message);
  };
}
document.addEventListener("securitypolicyviolation",
  (e) => window.__hw.csp.push(e.violatedDirective + " " + e.blockedURI));
"""


class Watched:
    """A page with everything that could go wrong on it collected."""

    def __init__(self, browser, viewport):
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.page.add_init_script(WATCH)
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.bad_responses: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error"
                     and self.console_errors.append(f"{m.text} ({m.location.get('url')})"))
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("response", lambda r: r.status >= 400 and self.bad_responses.append(f"{r.status} {r.url}"))
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def goto(self, url: str) -> None:
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.status == 200, url

    def assert_clean(self) -> None:
        csp = self.page.evaluate("window.__hw.csp")
        alerts = self.page.evaluate("window.__hw.alerts")
        assert not self.console_errors, (self.console_errors, self.bad_responses)
        assert not self.page_errors, self.page_errors
        assert not self.bad_responses, self.bad_responses
        assert not csp, csp
        assert not alerts and not self.dialogs, (alerts, self.dialogs)

    def screenshot(self, directory: Path, name: str) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        SCREENS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENS / path.name)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser):
    pages = []

    def open_page(viewport=DESKTOP) -> Watched:
        page = Watched(browser, viewport)
        pages.append(page)
        return page
    yield open_page
    for page in pages:
        page.close()


def _first_probe_scan(server: PageServer) -> int:
    scans = server.get_json(f"/api/scans?target={ws.PROBE_HARVESTER}")["scans"]
    return min(scan["id"] for scan in scans)


# -- the tests -------------------------------------------------------------------------------------
def test_overview_servers_and_a_scan_in_the_browser(realistic_server, watched, tmp_path):
    w = watched(DESKTOP)
    page = w.page
    screens = tmp_path / "screens"

    w.goto(f"{realistic_server.url}/")
    main = page.locator("main#content")
    assert page.title() == "Overview · HarvestWatch"
    card = page.locator("article.harvester-card")
    assert card.count() == 1 and card.is_visible() and ws.HARVESTER in card.inner_text()
    assert page.locator("p.health-line.ok").inner_text().startswith("All working")
    assert not page.locator("details#health-details").get_attribute("open")  # nothing wrong: folded
    assert page.locator("svg.timeline rect.scan").count() > 0
    assert page.locator(".x-axis time").count() == 5
    # The stylesheet applied (a CSP mistake would leave the page unstyled, silently).
    assert page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor") == "rgb(34, 48, 58)"
    # page.js made every time local and relative, the exact UTC time on hover.
    caught = card.locator("time").first
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC", caught.get_attribute("title"))
    assert "UTC" not in caught.inner_text() and caught.inner_text().endswith("ago)")
    # The heartbeat's time, folded away, localised all the same.
    assert main.locator("dl.health time").first.text_content() == "just now"
    w.screenshot(screens, "overview-desktop")

    # Each link on the card leads where it says.
    card.locator("a", has_text="every probe of it").click()
    page.wait_for_url(f"{realistic_server.url}/probes?server={ws.HARVESTER}")
    assert page.locator("tbody tr").count() == 1 and ws.PROBE_HARVESTER in page.locator("tbody tr").inner_text()
    page.go_back()
    card.locator("a", has_text="2 scans of its probe addresses").click()
    page.wait_for_url(f"{realistic_server.url}/scans?server={ws.HARVESTER}")
    assert page.locator("tbody tr").count() == 2
    page.go_back()
    page.locator(".numbers a", has_text="being watched").click()
    page.wait_for_url(f"{realistic_server.url}/servers?verdict=watching")
    assert page.locator("tbody tr").count() == 1 and ws.HONEST_1 in page.locator("tbody tr").inner_text()
    page.go_back()
    card.locator("h2 a").click()
    page.wait_for_url(f"{realistic_server.url}/servers?server={ws.HARVESTER}")
    row = page.locator("tr.verdict-harvester")
    assert row.count() == 1 and ws.HARVESTER in row.inner_text()
    badge = row.locator(".badge.harvester")
    assert badge.is_visible() and badge.inner_text() == "confirmed harvester"
    assert page.evaluate("getComputedStyle(document.querySelector('.badge.harvester')).backgroundColor") \
        == "rgb(217, 83, 79)"

    page.locator("nav a", has_text="Servers").click()
    page.wait_for_url(f"{realistic_server.url}/servers")
    for verdict in ("harvester", "suspect", "unverified", "watching", "clean", "unprobed"):
        assert page.locator(f"tr.verdict-{verdict}").count() == 1, verdict
    assert "scans could not reach this appliance" in page.locator("tr.verdict-unverified").inner_text()
    w.screenshot(screens, "servers-desktop")

    scan_id = _first_probe_scan(realistic_server)
    w.goto(f"{realistic_server.url}/scans/{scan_id}")
    assert page.locator("h1").inner_text() == f"Scan {scan_id}"
    assert page.locator("p.sentence").inner_text().startswith(f"{ws.SCANNER_1} tried 96 ports of ")
    certain = page.locator("p.harvester")
    assert certain.is_visible() and "5.1 s before the scan" in certain.inner_text()
    assert not page.locator("pre.detective").is_visible()  # the raw line waits, folded, for the expert
    page.locator("details#raw summary").click()
    assert page.locator("pre.detective").is_visible()
    triggers = page.locator("h2:has-text('Trigger candidates') + p + div table tbody tr")
    assert triggers.count() == 1
    cells = triggers.first.locator("td").all_inner_texts()
    assert cells[1] == "5.1 s" and cells[4] == f"[{ws.HARVESTER}]:123 UDP"
    w.screenshot(screens, "scan-desktop")
    certain.locator("a", has_text="probe").click()
    page.wait_for_url(f"{realistic_server.url}/probes/*")
    assert page.locator("h1").inner_text().startswith("Probe ")
    assert ws.PROBE_HARVESTER in page.locator("p.sentence").inner_text()

    w.goto(f"{realistic_server.url}/scans?attribution=candidate")
    assert page.locator("tbody tr").count() == 2
    w.assert_clean()


PAGES = [("overview", "/"), ("servers", "/servers"), ("scans", "/scans"), ("scan", None), ("probes", "/probes"),
         ("probe", "probe"), ("scanners", "/scanners"), ("about", "/about")]


def _path(server: PageServer, path: str | None) -> str:
    if path is None:
        return f"/scans/{_first_probe_scan(server)}"
    if path == "probe":
        return f"/probes/{server.get_json(f'/api/scans/{_first_probe_scan(server)}')['probe']['id']}"
    return path


@pytest.mark.parametrize("name, path", PAGES)
@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_every_page_fits_its_screen(realistic_server, watched, tmp_path, name, path, screen):
    viewport = PHONE if screen == "phone" else DESKTOP
    w = watched(viewport)
    w.goto(f"{realistic_server.url}{_path(realistic_server, path)}")
    width = w.page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"] + 2, f"{path} is {width} px wide on a {viewport['width']} px screen"
    assert w.page.locator("main#content h1").is_visible()
    # No address is cut or broken: each <code> is one line, inside the screen.
    overflowing = w.page.evaluate("""[...document.querySelectorAll('main code')].filter(c => {
        const r = c.getBoundingClientRect(); return r.right > innerWidth + 1 || r.height > 2.2 * parseFloat(
        getComputedStyle(c).lineHeight || 16) && !c.closest('h2'); }).map(c => c.textContent)""")
    assert overflowing == [], overflowing
    if screen == "phone" and name in ("servers", "probes", "scans"):
        # Tables are cards on a phone: the blamed server is on screen, labelled, not cut off to the right.
        row = w.page.locator("tbody tr").first
        assert row.evaluate("r => getComputedStyle(r).display") == "block"
    w.screenshot(tmp_path / "screens", f"{name}-{screen}")
    w.assert_clean()


def test_the_harvester_card_is_above_the_fold_on_a_phone(realistic_server, watched):
    w = watched(PHONE)
    w.goto(f"{realistic_server.url}/")
    box = w.page.locator("article.harvester-card h2").bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], box
    assert ws.HARVESTER in w.page.locator("article.harvester-card h2").inner_text()
    w.assert_clean()


def test_the_page_refreshes_in_place(watched, tmp_path):
    """page.js refetches every 30 s: the browser's clock is driven so the test need not wait."""
    db = tmp_path / "harvestwatch.sqlite"
    facts = ws.fill_realistic_store(db)
    server = PageServer(str(db), tmp_path / "serve.log")
    try:
        w = watched(DESKTOP)
        page = w.page
        page.clock.install()
        w.goto(f"{server.url}/")
        assert page.locator("main#content").get_attribute("data-refresh") == "30"
        page.locator("details#health-details summary").click()  # opened by the reader: stays open
        assert "4 live probe addresses" in page.locator("main#content").inner_text()
        page.evaluate("window.__marker = 'same document'; window.__old = document.getElementById('content')")

        # The daemon writes: a fifth probe address is live now, one more gap.
        store = Store(str(db))
        try:
            prober = store.status()["prober"]
            store.set_status({"prober": {**prober, "live_addresses": 5}, "heartbeat": time.time()})
            store.add_gap(facts["now"] - 30, facts["now"] - 30, "overrun", None)
        finally:
            store.close()
        assert server.get_json("/api/overview")["prober"]["live_addresses"] == 5

        page.clock.fast_forward(31_000)
        page.wait_for_function(
            "() => document.getElementById('content').innerText.includes('5 live probe addresses')",
            timeout=10_000, polling=100)  # a function, not a string: the page's CSP forbids eval
        assert page.evaluate("window.__marker") == "same document"  # no reload
        assert page.evaluate("window.__old !== document.getElementById('content')")  # <main> was swapped
        assert page.evaluate("window.__old.isConnected") is False
        assert "4 times the capture could not see everything" in page.locator("dl.health").inner_text()
        assert page.locator("details#health-details").get_attribute("open") is not None
        assert "UTC" not in page.locator("dl.health time").first.text_content()  # the fresh content localised too
        w.screenshot(tmp_path / "screens", "overview-refreshed")
        w.assert_clean()
    finally:
        server.stop()


def test_hostile_strings_show_as_text_and_run_nothing(watched, tmp_path):
    db = tmp_path / "harvestwatch.sqlite"
    ws.fill_realistic_store(db, hostile=True)
    server = PageServer(str(db), tmp_path / "serve.log")
    try:
        w = watched(DESKTOP)
        page = w.page
        scan_pages = [f"/scans/{s['id']}" for s in server.get_json("/api/scans")["scans"]]
        for path in ["/", "/servers", "/probes", "/scanners", "/scans", *scan_pages]:
            w.goto(f"{server.url}{path}")
            # Nothing injected became an element: one script (page.js), no images, no <b>.
            assert page.evaluate("[...document.scripts].map(s => s.getAttribute('src'))") == ["/static/page.js"]
            assert page.evaluate("document.images.length") == 0
            assert page.locator("main b[onmouseover]").count() == 0
            if path == "/":
                text = page.locator("main#content").inner_text()
                for field in ("gap", "firewall_problem", "privacy_problem", "pool_error", "skipped"):
                    assert ws.HOSTILE[field].strip() in text, field
                w.screenshot(tmp_path / "screens", "hostile-overview")
            if path == "/scanners":
                assert page.locator(".rdns").inner_text() == ws.HOSTILE["rdns"]
                w.screenshot(tmp_path / "screens", "hostile-scanners")
            if path == "/probes":
                assert ws.HOSTILE["probe_error"] in page.locator("main#content").inner_text()
        assert w.dialogs == []
        w.assert_clean()
    finally:
        server.stop()
