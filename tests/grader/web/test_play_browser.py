"""The seed quiz played in a real browser, as the seed page describes it: the countdown from
the server's deadline, "Attempts: 2 left", the hint after a wrong answer, the explanation after
the last attempt or a pass, a late answer marked late, and the badge."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from grader.testing import SUBMITTER_KEY, ApiProcess, RedisServer

from .browsing import leave, shot, sign_in

SET = "async-test-mastery"
SEED = Path(__file__).resolve().parents[3] / "challenges" / SET
QUESTIONS = sorted(p.stem for p in SEED.glob("q*.yaml"))


def _seed(name: str) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((SEED / f"{name}.yaml").read_text())
    return loaded


def _as_new_learner(browser: WebDriver, api: ApiProcess) -> str:
    """Signs in (if needed) and plays as a fresh learner id."""
    who = f"learner-{uuid.uuid4().hex[:8]}"
    sign_in(browser, api, SUBMITTER_KEY, f"/play/{SET}")
    field = browser.find_element(By.ID, "learner_id")
    field.clear()
    field.send_keys(who)
    leave(browser, field.submit)
    return who


def _choose(browser: WebDriver, api: ApiProcess, name: str, label: str) -> None:
    browser.get(f"{api.url}/play/{SET}/{name}")
    browser.find_element(By.ID, f"option-{label}").click()
    submit = browser.find_element(By.CSS_SELECTOR, "form[aria-label='Your answer'] button")
    leave(browser, submit.click)  # the answer's page has loaded


def _wrong(name: str) -> str:
    answer = _seed(name)["answer"]
    return next(label for label in "ABCD" if label != answer)


def test_a_learner_plays_the_seed_set_to_the_badge(
    api_process: ApiProcess, browser: WebDriver
) -> None:
    _as_new_learner(browser, api_process)
    assert "Get all challenges correct to earn the Async Test Mastery badge!" in (
        browser.find_element(By.TAG_NAME, "main").text
    )
    first = QUESTIONS[0]
    browser.get(f"{api_process.url}/play/{SET}/{first}")
    timer = browser.find_element(By.ID, "countdown")
    assert timer.get_attribute("role") == "timer"
    assert timer.text in ("2:00", "1:59", "1:58")
    assert browser.find_element(By.ID, "attempts").text == "Attempts: 2 left"
    shot(browser, "play-question")
    for name in QUESTIONS:
        _choose(browser, api_process, name, str(_seed(name)["answer"]))
        verdict = browser.find_element(By.ID, "verdict").text
        assert verdict.startswith("✓ Correct"), verdict
        explanation = browser.find_element(By.CSS_SELECTOR, ".explanation").text
        assert explanation.startswith("📝 Explanation")
    assert browser.find_element(By.CSS_SELECTOR, ".badge-line").text == (
        "🏅 Badge earned: Async Test Mastery"
    )
    shot(browser, "play-badge")
    browser.get(f"{api_process.url}/play/{SET}")
    states = [
        e.get_attribute("data-state")
        for e in browser.find_elements(By.CSS_SELECTOR, "[data-state]")
    ]
    assert states == ["passed"] * len(QUESTIONS)
    assert "Badge earned: Async Test Mastery" in browser.find_element(By.TAG_NAME, "main").text
    shot(browser, "play-progress")


def test_a_learner_who_runs_out_of_attempts_sees_the_hint_then_the_explanation(
    api_process: ApiProcess, browser: WebDriver
) -> None:
    _as_new_learner(browser, api_process)
    name = QUESTIONS[3]
    hint, explanation = str(_seed(name)["hint"]).strip(), str(_seed(name)["explanation"]).strip()
    _choose(browser, api_process, name, _wrong(name))
    page = browser.find_element(By.TAG_NAME, "main").text
    assert browser.find_element(By.ID, "verdict").text.startswith("✗ Incorrect")
    assert browser.find_element(By.ID, "attempts").text == "Attempts: 1 left"
    assert hint.split()[0] in browser.find_element(By.CSS_SELECTOR, ".hint").text
    assert not browser.find_elements(By.CSS_SELECTOR, ".explanation")
    assert explanation[:30] not in page
    assert "Correct answer" not in page
    shot(browser, "play-hint")
    _choose(browser, api_process, name, _wrong(name))
    page = browser.find_element(By.TAG_NAME, "main").text
    assert browser.find_element(By.ID, "attempts").text == "Attempts: 0 left"
    assert explanation.split()[0] in browser.find_element(By.CSS_SELECTOR, ".explanation").text
    assert f"Correct answer: {_seed(name)['answer']}" in page
    assert not browser.find_elements(By.CSS_SELECTOR, "form[aria-label='Your answer']")


@pytest.fixture(scope="module")
def short_clock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """The API on its own Redis with a copy of the seed set whose questions allow 2 s."""
    root = tmp_path_factory.mktemp("short-clock")
    shutil.copytree(SEED, root / "challenges" / SET)
    for path in (root / "challenges" / SET).glob("q*.yaml"):
        path.write_text(path.read_text().replace("time_limit: 120", "time_limit: 2"))
    redis_server = RedisServer(root / "redis")
    redis_server.folder.mkdir()
    redis_server.start()
    api = ApiProcess(
        redis_server.url,
        root / "api.log",
        env={"GRADER_API__CHALLENGES_ROOT": str(root / "challenges")},
    )
    api.start()
    yield api
    api.stop()
    redis_server.stop(graceful=False)


def test_a_late_answer_is_graded_and_marked_late(
    short_clock: ApiProcess, browser: WebDriver
) -> None:
    _as_new_learner(browser, short_clock)
    name = QUESTIONS[0]
    browser.get(f"{short_clock.url}/play/{SET}/{name}")
    time.sleep(2.5)  # the page's own countdown runs out too
    assert "time is up" in browser.find_element(By.CSS_SELECTOR, "p.meta").text
    _choose(browser, short_clock, name, str(_seed(name)["answer"]))
    assert browser.find_element(By.ID, "verdict").text == "✓ Correct (late)"
    browser.get(f"{short_clock.url}/play/{SET}")
    state = browser.find_element(By.CSS_SELECTOR, "[data-state]").get_attribute("data-state")
    assert state == "passed_late"
