"""A reviewer in a real browser: headless Chromium opens the emailed link, sees the findings, decides per object.

The approval API is served on 127.0.0.1 by the review handler from the synthesized asset (API
Gateway proxy events); the link is the one the notification carried. ``make test`` installs
Debian's ``chromium`` and ``chromium-driver``; without them this test fails, it does not skip.
"""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from macie_pipeline.local.engine import COVERAGE, LocalPipeline
from macie_pipeline.local.template import choose_pipeline, synth_sample

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CARD = b"name,card\nAlex Doe,4539 1488 0343 6467\nSam Roe,5555-5555-5555-4444\n"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: `make test` installs Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _review_link(engine: LocalPipeline, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in engine.drain_notifications():
            if message.get("event") == "REVIEW_REQUESTED":
                return message["link"]
        time.sleep(0.1)
    raise AssertionError("no review request was published")


def test_reviewer_decides_each_object_in_headless_chromium_and_the_link_then_refuses(browser):
    """One review for the batch: the reviewer approves one object and denies the other with the
    radio buttons, then finishes; the approved object reaches the vault, the denied one stays in quarantine."""
    stack, state_machine = choose_pipeline([synth_sample()], None, None)
    with LocalPipeline(stack, state_machine, review_wait_seconds=120) as engine:
        approved = engine.upload("finance/payments 2026.csv", CARD)
        denied = engine.upload("finance/refunds.csv", CARD.replace(b"Alex", b"Kim"))
        engine.put_object_created_events([approved, denied])
        engine.pump_intake()
        executions = engine.discover_executions()
        link = _review_link(engine)
        assert link.startswith(engine.review_base_url() + "reviews/")

        browser.get(link)
        assert browser.title == "Macie pipeline: review needed"
        rows = {row.find_element(By.CSS_SELECTOR, "code").get_attribute("title"): row
                for row in browser.find_elements(By.CSS_SELECTOR, "tbody tr")}
        assert set(rows) == {approved.key, denied.key}
        cells = [td.text for td in rows[approved.key].find_elements(By.TAG_NAME, "td")]
        assert cells[0] == approved.key and "CREDIT_CARD_NUMBER: 2" in cells[4]
        assert engine.stored_versions() and not [s for s in engine.stored_versions() if s["zone"] == "vault"]

        rows[approved.key].find_element(By.CSS_SELECTOR, "input[value=approve]").click()
        rows[denied.key].find_element(By.CSS_SELECTOR, "input[value=deny]").click()
        browser.find_element(By.CSS_SELECTOR, "button[name=action][value=finish]").click()
        WebDriverWait(browser, 20).until(lambda d: d.title == "Decision recorded")
        assert "You approved 1 and denied 1 object(s)" in browser.find_element(By.TAG_NAME, "p").text

        [execution] = engine.wait(executions, decision="manual", timeout=60)
        assert execution.status == "SUCCEEDED"
        COVERAGE.update(execution.states)
        stored = engine.stored_versions()
        vault = [(v["key"], v["sha256"]) for v in stored if v["zone"] == "vault"]
        assert vault == [(approved.key, approved.sha256)]
        assert [s["key"].split("/")[0] for s in stored if s["sha256"] == denied.sha256] == ["denied"]
        assert engine.invariant_violations() == []

        # The same link again: the page says it was decided, and a second POST is refused.
        browser.get(link)
        assert browser.title == "Review already decided"
        request = urllib.request.Request(link, data=b"decision=deny", method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 409
        statuses = [(method, status) for method, path, status in engine.server.requests if "/reviews/" in path]
        assert statuses == [("GET", 200), ("POST", 200), ("GET", 409), ("POST", 409)]
