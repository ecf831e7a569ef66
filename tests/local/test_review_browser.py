"""A reviewer in a real browser: headless Chromium opens the emailed link, signs in, sees the findings,
decides per object.

The approval API is served on 127.0.0.1 by the review handler from the synthesized asset (API
Gateway proxy events); the link is the one the notification carried. The reviewer is a user of the
stack's reviewers' pool in moto's Cognito, in its reviewers group; the sign-in page is the local
engine's stand-in for the managed login (tokens from moto), the checks are the review function's. ``make test`` installs
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


def _wait(browser, engine: LocalPipeline, condition) -> None:
    """Wait for ``condition``; on a timeout, say where the browser is and what the server answered."""
    try:
        WebDriverWait(browser, 20).until(condition)
    except Exception as error:
        where = f"{browser.current_url} {browser.title!r}: {browser.find_element(By.TAG_NAME, 'body').text[:500]!r}"
        raise AssertionError(f"{where}; requests {engine.server.requests}") from error


def _decision_items(engine: LocalPipeline) -> list[dict]:
    """The per-object decision items (``review#<batch>#<i>``) of the state table, as plain values."""
    from boto3.dynamodb.types import TypeDeserializer

    dynamodb = engine.deployment.session.client("dynamodb")
    plain = TypeDeserializer()
    items = []
    for table in dynamodb.list_tables()["TableNames"]:
        for item in dynamodb.scan(TableName=table, ConsistentRead=True).get("Items", []):
            pk = item.get("pk", {}).get("S", "")
            if pk.startswith("review#") and pk.count("#") == 2:
                items.append({k: plain.deserialize(v) for k, v in item.items()})
    return items


def test_reviewer_signs_in_decides_each_object_in_headless_chromium_and_the_link_then_refuses(browser):
    """One review for the batch: the reviewer signs in, approves one object and saves, denies the other
    and finishes; the decisions record the verified reviewer; the approved object reaches the vault, the
    denied one stays in quarantine."""
    stack, state_machine = choose_pipeline([synth_sample()], None, None)
    with LocalPipeline(stack, state_machine, review_wait_seconds=120) as engine:
        approved = engine.upload("finance/payments 2026.csv", CARD)
        denied = engine.upload("finance/refunds.csv", CARD.replace(b"Alex", b"Kim"))
        engine.put_object_created_events([approved, denied])
        engine.pump_intake()
        executions = engine.discover_executions()
        link = _review_link(engine)
        assert link.startswith(engine.review_base_url() + "reviews/")
        email = "dana.reviewer@example.com"
        password = engine.deployment.reviewers.add_reviewer(email)

        # The link leads to the sign-in first; the review shows once the reviewer has signed in.
        browser.get(link)
        assert browser.title == "Sign in" and approved.key not in browser.page_source
        browser.find_element(By.NAME, "username").send_keys(email)
        browser.find_element(By.NAME, "password").send_keys(password)
        browser.find_element(By.ID, "sign-in").click()
        _wait(browser, engine, lambda d: d.title == "Macie pipeline: review needed")
        assert browser.current_url == link
        assert f"Signed in as {email}." in browser.find_element(By.CLASS_NAME, "who").text
        rows = {row.find_element(By.CSS_SELECTOR, "code").get_attribute("title"): row
                for row in browser.find_elements(By.CSS_SELECTOR, "tbody tr")}
        assert set(rows) == {approved.key, denied.key}
        cells = [td.text for td in rows[approved.key].find_elements(By.TAG_NAME, "td")]
        assert cells[0] == approved.key and "CREDIT_CARD_NUMBER: 2" in cells[4]
        assert engine.stored_versions() and not [s for s in engine.stored_versions() if s["zone"] == "vault"]

        # One object at a time: approve the first and save, then deny the second and finish.
        rows[approved.key].find_element(By.CSS_SELECTOR, "input[value=approve]").click()
        browser.find_element(By.CSS_SELECTOR, "button[name=action][value=save]").click()
        _wait(browser, engine, lambda d: "Saved 1 decision(s)" in d.page_source)
        row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr")
                   if r.find_element(By.CSS_SELECTOR, "code").get_attribute("title") == denied.key)
        row.find_element(By.CSS_SELECTOR, "input[value=deny]").click()
        browser.find_element(By.CSS_SELECTOR, "button[name=action][value=finish]").click()
        _wait(browser, engine, lambda d: d.title == "Decision recorded")
        assert "You approved 1 and denied 1 object(s)" in browser.find_element(By.TAG_NAME, "p").text

        # The audit record: each object's decision item names the verified reviewer.
        audit = _decision_items(engine)
        assert sorted(item["decision"] for item in audit) == ["APPROVE", "DENY"]
        sub = next(a["Value"] for a in engine.deployment.reviewers.idp.admin_get_user(
            UserPoolId=engine.deployment.reviewers.pool_id, Username=email)["UserAttributes"] if a["Name"] == "sub")
        for item in audit:
            assert (item["reviewer"], item["reviewerEmail"], item["reviewerSub"]) == (email, email, sub)
            assert item["reviewerGroups"] == ["reviewers"] and item["reviewerSourceIp"] == "127.0.0.1"
        assert [item["approvals"] for item in audit if item["decision"] == "APPROVE"][0][sub]["email"] == email

        [execution] = engine.wait(executions, decision="manual", timeout=60)
        assert execution.status == "SUCCEEDED"
        COVERAGE.update(execution.states)
        stored = engine.stored_versions()
        vault = [(v["key"], v["sha256"]) for v in stored if v["zone"] == "vault"]
        assert vault == [(approved.key, approved.sha256)]
        assert [s["key"].split("/")[0] for s in stored if s["sha256"] == denied.sha256] == ["denied"]
        assert engine.invariant_violations() == []
        # Each object's result event names the reviewer who decided it.
        decided = {e["detail"]["object"]["key"]: e["detail"].get("review") or {} for e in engine.events
                   if e["detail"].get("outcome") in ("APPROVED", "DENIED")}
        assert {key: (r.get("decision"), r.get("reviewer")) for key, r in decided.items()} == {
            approved.key: ("APPROVE", email), denied.key: ("DENY", email)}

        # The same link again: the page says it was decided; the link alone (no sign-in) cannot post.
        browser.get(link)
        assert browser.title == "Review already decided"
        request = urllib.request.Request(link, data=b"decision=deny", method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        statuses = [(method, status) for method, path, status in engine.server.requests if "/reviews/" in path]
        assert statuses == [("GET", 302), ("GET", 200), ("POST", 200), ("POST", 200), ("GET", 409), ("POST", 401)]
        signing_in = [(method, path.rsplit("/", 1)[-1], status) for method, path, status in engine.server.requests
                      if "/reviews/" not in path and not path.endswith("/favicon.ico")]
        assert signing_in == [("GET", "authorize", 200), ("POST", "authorize", 302), ("POST", "token", 200),
                              ("GET", "signed-in", 302)]
