"""The instructor's console in a real browser, with a real worker behind the API process:
uploading a challenge and watching it validate, a refused file's problems, the matrix, and
the submissions list with its filters and detail pages."""

from __future__ import annotations

import uuid

import pytest
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from grader.testing import ADMIN_KEY, INSTRUCTOR_KEY, SUBMITTER_KEY, ApiProcess

from .browsing import leave, shot, sign_in

SET = f"web-{uuid.uuid4().hex[:6]}"
GREETING = {
    "title": "What does the greeting print?",
    "kind": "output",
    "prompt": "What does this print?",
    "code": 'print("hello " + "web")\n',
    "options": [{"label": "A", "text": "hello web"}, {"label": "B", "text": "helloweb"}],
    "answer": "A",
    "expectation": {"output": {"stdout": "hello web\n"}},
}
BROKEN = """\
title: A regex that does not compile
kind: output
prompt: Print hello.
code: print("hello")
expectation:
  output:
    match: regex
    stdout: "(hello"
"""


def _upload(browser: WebDriver, api: ApiProcess, path: str, text: str) -> None:
    browser.get(f"{api.url}/console/upload")
    browser.find_element(By.ID, "path").send_keys(path)
    area = browser.find_element(By.ID, "text")
    browser.execute_script("arguments[0].value = arguments[1];", area, text)  # no auto-indent
    button = browser.find_element(By.CSS_SELECTOR, "form.card button[type=submit]")
    leave(browser, button.click)


def _status(browser: WebDriver) -> str:
    badge = browser.find_element(By.CSS_SELECTOR, "#validation .badge")
    return str(badge.get_attribute("data-status"))


@pytest.mark.usefixtures("worker_process")
def test_an_instructor_uploads_a_challenge_and_sees_it_published(
    api_process: ApiProcess, browser: WebDriver
) -> None:
    sign_in(browser, api_process, INSTRUCTOR_KEY)
    _upload(browser, api_process, f"{SET}/greeting.yaml", yaml.safe_dump(GREETING))
    assert browser.current_url.startswith(f"{api_process.url}/console/challenges/{SET}/greeting")
    assert _status(browser) in ("validating", "published")
    WebDriverWait(browser, 120, poll_frequency=1).until(
        lambda _: _status(browser) != "validating"
    )  # the page reloads itself until a worker has decided
    assert _status(browser) == "published"
    checks = browser.find_elements(By.CSS_SELECTOR, "#checks tbody tr")
    assert [row.find_element(By.CSS_SELECTOR, ".badge").text for row in checks] == ["ok", "ok"]
    shot(browser, "console-validated")
    browser.get(f"{api_process.url}/console")
    listed = browser.find_element(By.CSS_SELECTOR, f"a[href='/console/challenges/{SET}/greeting']")
    badge = listed.find_element(By.XPATH, "../../td/span[@data-status]")
    assert badge.get_attribute("data-status") == "published"
    browser.get(f"{api_process.url}/console/matrix")
    row = browser.find_element(By.XPATH, f"//th[a[@href='/console/challenges/{SET}/greeting']]/..")
    assert row.find_elements(By.CSS_SELECTOR, ".cell.ok")
    shot(browser, "console-matrix")


def test_a_refused_upload_names_the_line_and_field(
    api_process: ApiProcess, browser: WebDriver
) -> None:
    sign_in(browser, api_process, INSTRUCTOR_KEY)
    _upload(browser, api_process, f"{SET}/broken.yaml", BROKEN)
    problems = [li.text for li in browser.find_elements(By.CSS_SELECTOR, ".problems li")]
    assert len(problems) == 1
    assert problems[0].startswith(f"{SET}/broken.yaml:8 expectation.output.stdout")
    assert "regex" in problems[0]
    # what was typed is kept for fixing
    assert browser.find_element(By.ID, "text").get_attribute("value") == BROKEN


def test_a_submitter_cannot_open_the_instructor_pages(
    api_process: ApiProcess, browser: WebDriver
) -> None:
    sign_in(browser, api_process, SUBMITTER_KEY)
    for path in ("/console/upload", "/console/matrix"):
        browser.get(f"{api_process.url}{path}")
        assert browser.find_element(By.CSS_SELECTOR, "p.error").text == (
            "this page is for instructor and admin keys"
        )
    nav = browser.find_element(By.TAG_NAME, "nav").text
    assert "Upload" not in nav
    assert "Matrix" not in nav


def test_an_admin_finds_a_learners_answer_and_opens_it(
    api_process: ApiProcess, browser: WebDriver
) -> None:
    learner = f"web-{uuid.uuid4().hex[:8]}"
    sign_in(browser, api_process, SUBMITTER_KEY, "/play/async-test-mastery")
    field = browser.find_element(By.ID, "learner_id")
    field.clear()
    field.send_keys(learner)
    leave(browser, field.submit)
    browser.get(f"{api_process.url}/play/async-test-mastery/q3-why-runtime-error")
    browser.find_element(By.ID, "option-A").click()  # B is the answer
    button = browser.find_element(By.CSS_SELECTOR, "form[aria-label='Your answer'] button")
    leave(browser, button.click)
    browser.delete_all_cookies()
    sign_in(browser, api_process, ADMIN_KEY, f"/console/submissions?learner_id={learner}")
    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 1
    assert rows[0].find_element(By.CSS_SELECTOR, "[data-result]").text == "failed"
    shot(browser, "console-submissions")
    leave(browser, rows[0].find_element(By.TAG_NAME, "a").click)
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Submission ")
    assert "A is not the answer" in browser.find_element(By.CSS_SELECTOR, "p.reason").text
