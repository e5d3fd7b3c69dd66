"""The pages in a real browser: Chromium (Debian's) headless, driven by Selenium, against the
API process as the service runs it. Screenshots of the main pages land in docs/screenshots/."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from grader.adapters.store import SubmissionStore
from grader.domain.observation import (
    CapturedStream,
    EnvironmentRef,
    Observation,
    RunMode,
    RunStatus,
)
from grader.domain.submission import Submission
from grader.domain.verdict import Verdict, VerdictStatus
from grader.testing import INSTRUCTOR_KEY, SUBMITTER_KEY, ApiProcess, RedisServer

from .browsing import leave, shot, sign_in

Q4 = "async-test-mastery/q4-counter-after-test"
HOSTILE = "<script>document.title='owned'</script>\x1b[31m\u202eevil"


def test_an_instructor_signs_in_and_reads_a_challenge(
    api_process: ApiProcess, browser: WebDriver
) -> None:
    sign_in(browser, api_process, INSTRUCTOR_KEY)
    assert browser.current_url == f"{api_process.url}/console"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Challenges"
    shot(browser, "console")
    link = browser.find_element(
        By.LINK_TEXT, "What is the value of counter after running this async test?"
    )
    leave(browser, link.click)
    assert browser.current_url == f"{api_process.url}/console/challenges/{Q4}"
    assert browser.find_element(By.ID, "key").text == "Answer key"
    assert browser.find_elements(By.CSS_SELECTOR, ".highlight .k")  # highlighted keywords
    shot(browser, "challenge")


def test_a_submission_page_shows_hostile_output_as_text(
    api_process: ApiProcess, browser: WebDriver, redis_server: RedisServer
) -> None:
    store = SubmissionStore.from_url(redis_server.url, 3600)
    submission, _ = store.create(
        Submission(id="browser-hostile-1", key_id="platform", challenge_id=Q4, code=HOSTILE)
    )
    observation = Observation(
        status=RunStatus.COMPLETED,
        environment=EnvironmentRef(name="fastapi-0.115-httpx-0.27", image_id="sha256:abc"),
        mode=RunMode.SCRIPT,
        stdout=CapturedStream(text=HOSTILE, bytes=len(HOSTILE)),
    )
    store.finish(
        submission,
        Verdict(status=VerdictStatus.FAILED, reason=HOSTILE, observation=observation),
    )
    store.close()
    sign_in(browser, api_process, SUBMITTER_KEY, f"/console/submissions/{submission.id}")
    assert browser.title == "Submission browser-hostile-1 · Grader"  # no script ran
    shown = browser.find_element(By.CSS_SELECTOR, "pre.output").text
    assert shown == "<script>document.title='owned'</script><U+001B>[31m<U+202E>evil"
    shot(browser, "submission")


def test_the_sign_in_page_is_usable_by_keyboard_and_labelled(
    api_process: ApiProcess, browser: WebDriver
) -> None:
    browser.get(f"{api_process.url}/signin")
    field = browser.switch_to.active_element  # autofocus lands on the key field
    assert field.get_attribute("id") == "api_key"
    label = browser.find_element(By.CSS_SELECTOR, "label[for=api_key]")
    assert label.text == "API key"
    shot(browser, "signin")


def test_the_pages_fit_a_phone(api_process: ApiProcess, browser: WebDriver) -> None:
    """At a phone's width no page scrolls sideways (wide tables and code scroll in place)."""
    browser.set_window_size(390, 844)
    sign_in(browser, api_process, INSTRUCTOR_KEY)
    pages = [
        "/console",
        "/console/submissions",
        "/console/matrix",
        f"/console/challenges/{Q4}",
        "/play/async-test-mastery",
        "/play/async-test-mastery/q1-async-test-output",
    ]
    for path in pages:
        browser.get(f"{api_process.url}{path}")
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (path, overflow)
    shot(browser, "phone-question")
