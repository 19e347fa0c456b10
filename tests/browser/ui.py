"""Driving the Airflow 3 UI (a React app) in Debian's headless Chromium with selenium.

Nothing is downloaded at run time: the browser is /usr/bin/chromium and its driver
/usr/bin/chromedriver (scripts/install_browser.sh installs both). Every step waits for what
it needs to see (an element, a text), never for a fixed time.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
)


class Browser:
    """One headless Chromium with a fresh profile, logged in to one Airflow deployment."""

    def __init__(self, base_url: str, screenshots: Path, timeout: float = 60.0):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.base_url = base_url.rstrip("/")
        self.screenshots = screenshots
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="shopflow-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)

    def close(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- waiting ------------------------------------------------------------------------------
    def wait(self, condition: Callable, what: str, timeout: float | None = None):
        """Wait until ``condition(driver)`` is truthy; fail with ``what`` and a screenshot."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout or self.timeout, poll_frequency=0.25).until(
                condition
            )
        except TimeoutException:
            shot = self.screenshot(f"timeout-{re.sub(r'[^a-z0-9]+', '-', what.lower())[:60]}")
            raise AssertionError(
                f"timed out waiting for {what} at {self.driver.current_url} (screenshot {shot})"
            ) from None

    def page_text(self) -> str:
        """All text of the page, including what is scrolled out of view."""
        return self.driver.execute_script("return document.body ? document.body.innerText : ''")

    def wait_text(self, text: str, timeout: float | None = None) -> str:
        return self.wait(
            lambda d: text in self.page_text() and self.page_text(), repr(text), timeout
        )

    def find(self, css: str, what: str | None = None):
        from selenium.webdriver.common.by import By

        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, css), what or css)

    def click(self, element) -> None:
        # React re-renders; a JS click does not fail on an element covered by a tooltip
        self.driver.execute_script("arguments[0].click();", element)

    def screenshot(self, name: str) -> Path:
        self.screenshots.mkdir(parents=True, exist_ok=True)
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    # -- Airflow pages ------------------------------------------------------------------------
    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def login(self, user: str, password: str) -> None:
        """Sign in with the simple auth manager's form; wait for the home page."""
        from selenium.webdriver.common.by import By

        self.open("/")
        self.find("input[name=username]", "the login form").send_keys(user)
        self.driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(password)
        self.click(self.driver.find_element(By.CSS_SELECTOR, "button[type=submit]"))
        self.wait(lambda d: "/auth/login" not in d.current_url, "the login to finish")
        self.find("nav, [data-testid]", "the Airflow UI")

    def task_path(self, dag_id: str, run_id: str, task_id: str) -> str:
        return f"/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}"

    def open_task_log(self, dag_id: str, run_id: str, task_id: str, expect: str) -> str:
        """The task instance's page, its Logs tab showing ``expect``; returns the log's text."""
        self.open(self.task_path(dag_id, run_id, task_id))
        self.wait(lambda d: expect in self.log_text(), f"{task_id}'s log to show {expect!r}")
        return self.log_text()

    def scroll_log_to(self, text: str) -> None:
        """Scroll the log viewer so that the line holding ``text`` is in the middle."""
        self.driver.execute_script(
            "const rows = document.querySelectorAll("
            "'[data-testid=virtual-scroll-container] [data-testid^=virtualized-item]');"
            "const row = [...rows].find(r => r.textContent.includes(arguments[0]));"
            "if (row) row.scrollIntoView({block: 'center'});",
            text,
        )

    def log_text(self) -> str:
        """The whole text of the log viewer. It is a virtualized list: only the rows near the
        visible window are in the page (how many depends on how long the log is), so the
        viewer is scrolled from top to bottom, half a window at a time, and each row's text
        is kept once by its ``data-index``, one line per row; the viewer is left at the bottom,
        as it opens."""
        read = (
            "const el = document.querySelector('[data-testid=virtual-scroll-container]');"
            "if (!el) return null;"
            "if (arguments[0] !== null) el.scrollTop = arguments[0];"
            "return [el.scrollTop, el.scrollHeight, el.clientHeight,"
            " [...el.querySelectorAll('[data-testid^=virtualized-item]')]"
            "   .map(r => [Number(r.getAttribute('data-index')), r.textContent])];"
        )
        state = self.driver.execute_script(read, 0)
        if state is None:
            return ""
        rows: dict[int, str] = {}
        top = 0
        while True:
            time.sleep(0.05)  # the list renders the rows of the new position asynchronously
            _, height, window, items = self.driver.execute_script(read, None)
            rows.update({int(index): text for index, text in items})
            if top + window >= height:
                break
            top += max(window // 2, 1)
            self.driver.execute_script(read, top)
        self.driver.execute_script(read, height)
        return "\n".join(rows[index] for index in sorted(rows))

    def follow_log_link(self, href_part: str) -> str:
        """Click the link in the task log whose address contains ``href_part`` (the log viewer
        turns URLs into links) and switch to where it opened; returns its address."""
        from selenium.webdriver.common.by import By

        link = self.wait(
            lambda d: next(
                (
                    a
                    for a in d.find_elements(
                        By.CSS_SELECTOR, "[data-testid=virtual-scroll-container] a[href]"
                    )
                    if href_part in (a.get_attribute("href") or "")
                ),
                None,
            ),
            f"a link to {href_part} in the log",
        )
        href = link.get_attribute("href")
        before = set(self.driver.window_handles)
        self.click(link)
        self.wait(
            lambda d: set(d.window_handles) - before or href_part in d.current_url,
            f"{href} to open",
        )
        new = set(self.driver.window_handles) - before
        if new:  # opened in a new tab
            self.driver.switch_to.window(new.pop())
        return href

    def back_to_first_tab(self) -> None:
        for handle in self.driver.window_handles[1:]:
            self.driver.switch_to.window(handle)
            self.driver.close()
        self.driver.switch_to.window(self.driver.window_handles[0])

    def task_state(self) -> str:
        """The state badge of the open task instance page (e.g. "Success", "Failed")."""
        return self.driver.execute_script(
            "const el = document.querySelector("
            "'[data-testid=header-card] [data-testid=state-badge]')"
            " || document.querySelector('[data-testid=state-badge]');"
            "return el ? el.textContent.trim() : '';"
        )


def wait_until(check: Callable[[], object], what: str, timeout: float, every: float = 2.0):
    """Poll ``check`` (an API call, not the browser) until truthy; fail saying ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
