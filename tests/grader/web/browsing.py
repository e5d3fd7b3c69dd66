"""What the browser tests do again and again: sign in, take a screenshot."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from grader.testing import ROOT, ApiProcess

SCREENSHOTS = ROOT / "docs" / "screenshots"


def sign_in(browser: WebDriver, api: ApiProcess, key: str, page: str = "/console") -> None:
    browser.get(f"{api.url}{page}")
    assert browser.current_url.startswith(f"{api.url}/signin?next=")
    browser.find_element(By.ID, "api_key").send_keys(key)
    button = browser.find_element(By.CSS_SELECTOR, "form.card button[type=submit]")
    button.click()
    WebDriverWait(browser, 30).until(staleness_of(button))  # the next page has loaded


def shot(browser: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
