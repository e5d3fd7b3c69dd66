"""The pages in a real browser: Chromium (Debian's) headless, driven by Selenium, against the
API process as the service runs it. Screenshots of the main pages land in docs/screenshots/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
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
from grader.testing import INSTRUCTOR_KEY, ROOT, SUBMITTER_KEY, ApiProcess, RedisServer

SCREENSHOTS = ROOT / "docs" / "screenshots"
Q4 = "async-test-mastery/q4-counter-after-test"
HOSTILE = "<script>document.title='owned'</script>\x1b[31m\u202eevil"


@pytest.fixture(scope="module")
def api(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    process = ApiProcess(redis_server.url, tmp_path_factory.mktemp("web") / "api.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        pytest.fail("chromedriver is missing: `make system-deps` installs chromium-driver")
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1100,900")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _sign_in(browser: WebDriver, api: ApiProcess, key: str, page: str = "/console") -> None:
    browser.get(f"{api.url}{page}")
    assert browser.current_url.startswith(f"{api.url}/signin?next=")
    browser.find_element(By.ID, "api_key").send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()


def _shot(browser: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_an_instructor_signs_in_and_reads_a_challenge(api: ApiProcess, browser: WebDriver) -> None:
    _sign_in(browser, api, INSTRUCTOR_KEY)
    assert browser.current_url == f"{api.url}/console"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Challenges"
    _shot(browser, "console")
    browser.find_element(
        By.LINK_TEXT, "What is the value of counter after running this async test?"
    ).click()
    assert browser.current_url == f"{api.url}/console/challenges/{Q4}"
    assert browser.find_element(By.ID, "key").text == "Answer key"
    assert browser.find_elements(By.CSS_SELECTOR, ".highlight .k")  # highlighted keywords
    _shot(browser, "challenge")


def test_a_submission_page_shows_hostile_output_as_text(
    api: ApiProcess, browser: WebDriver, redis_server: RedisServer
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
    _sign_in(browser, api, SUBMITTER_KEY, f"/console/submissions/{submission.id}")
    assert browser.title == "Submission browser-hostile-1 · Grader"  # no script ran
    shown = browser.find_element(By.CSS_SELECTOR, "pre.output").text
    assert shown == "<script>document.title='owned'</script><U+001B>[31m<U+202E>evil"
    _shot(browser, "submission")


def test_the_sign_in_page_is_usable_by_keyboard_and_labelled(
    api: ApiProcess, browser: WebDriver
) -> None:
    browser.get(f"{api.url}/signin")
    field = browser.switch_to.active_element  # autofocus lands on the key field
    assert field.get_attribute("id") == "api_key"
    label = browser.find_element(By.CSS_SELECTOR, "label[for=api_key]")
    assert label.text == "API key"
    _shot(browser, "signin")
