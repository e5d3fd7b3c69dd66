"""What the browser tests do again and again: sign in, go to the next page, take a screenshot."""

from __future__ import annotations

from collections.abc import Callable

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from grader.testing import ROOT, ApiProcess

SCREENSHOTS = ROOT / "docs" / "screenshots"


def sign_in(browser: WebDriver, api: ApiProcess, key: str, page: str = "/console") -> None:
    browser.get(f"{api.url}{page}")
    assert browser.current_url.startswith(f"{api.url}/signin?next=")
    browser.find_element(By.ID, "api_key").send_keys(key)
    button = browser.find_element(By.CSS_SELECTOR, "form.card button[type=submit]")
    leave(browser, button.click)


def leave(browser: WebDriver, act: Callable[[], None]) -> None:
    """Does ``act`` (a click or a submit that loads another page) and waits until the next
    document is there and complete.

    The old document is marked before ``act``; the wait ends when a complete document without
    the mark is current. While the browser is between documents, chromedriver may answer any
    command with an error (a stale element, or "Node with given id does not belong to the
    document" for an element it no longer finds): those are retried until the timeout.
    """
    browser.execute_script("window.graderLeaving = true;")
    act()
    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.execute_script(
            "return window.graderLeaving === undefined && document.readyState === 'complete';"
        )
    )


def shot(browser: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
