"""The web desk by keyboard alone (WCAG 2.1.1 keyboard, 2.1.2 no keyboard trap, 2.4.1 bypass
blocks, 2.4.7 focus visible): on the case page, the first Tab reaches the skip link and Enter
moves focus to the main content; from there Tab reaches a next-step form whose box is ticked with
Space, its reason typed and the form submitted with Enter, and the case moves on. Tab walks every
control of the page in order, each with a visible focus ring, and leaves the page after the last
(no trap); Shift+Tab walks back. A deadline's day-by-day count opens and closes with Enter.

Keys go to the focused element (ActionChains), never to an element found by the
test: what the test reaches is what a keyboard user reaches. One test, one server, one browser."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from .a11y import fill
from .harness import Site, sign_in, text_of

WAIT = 30
MAX_TABS = 200
"""More Tabs than the case page has controls: a walk that has not left the page by then is trapped."""

FOCUSED = """
    const el = document.activeElement;
    if (!el || el === document.body || el === document.documentElement) return null;
    const style = getComputedStyle(el), box = el.getBoundingClientRect();
    return {id: el.id, tag: el.tagName.toLowerCase(), name: el.getAttribute('name'), cls: el.className,
            form: el.form ? el.form.id : (el.closest('form') || {}).id || null,
            text: (el.textContent || '').trim().slice(0, 40),
            outline: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth),
            visible: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0 &&
                     box.top < innerHeight && box.left < innerWidth};
"""
TABBABLE = """
    const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]';
    return [...document.querySelectorAll(sel)].filter(e => e.tabIndex >= 0 && !e.disabled &&
        e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden').length;
"""


def focused(driver: Any) -> dict[str, Any] | None:
    found: dict[str, Any] | None = driver.execute_script(FOCUSED)
    return found


def press(driver: Any, *keys: str) -> dict[str, Any] | None:
    """Send ``keys`` to whatever has the focus (the page itself when nothing does), as a keyboard
    would: ActionChains, not an element's send_keys, which would first focus that element."""
    chain = ActionChains(driver)
    if keys[0] == Keys.SHIFT:
        chain.key_down(Keys.SHIFT).send_keys(*keys[1:]).key_up(Keys.SHIFT)
    else:
        chain.send_keys(*keys)
    chain.perform()
    return focused(driver)


def until(driver: Any, script: str) -> None:
    """Wait until ``script`` (a ``return`` of a condition) holds: a key's effect, not a sleep."""
    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script(script) is True)


def assert_ring(step: dict[str, Any] | None) -> None:
    """The focused control is on screen and drawn with the stylesheet's 3 px focus outline."""
    assert step is not None
    assert step["visible"], step
    assert step["outline"] != "none" and step["outlineWidth"] >= 2, step


def skip_link_then_main(site: Site, driver: Any, case_page: str) -> None:
    driver.get(case_page)
    first = press(driver, Keys.TAB)
    assert first is not None and first["tag"] == "a" and first["cls"] == "skip", first
    assert_ring(first)
    press(driver, Keys.ENTER)
    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script("return document.activeElement.id") == "main")
    assert driver.current_url.endswith("#main")


def submit_a_form_by_keyboard(site: Site, driver: Any, case_page: str) -> None:
    """From the main content, Tab to the record_circumstances form, tick its first box with
    Space, type a reason, and send it with Enter on its button."""
    version = int(text_of(driver, "version"))
    step = None
    for _ in range(MAX_TABS):
        step = press(driver, Keys.TAB)
        assert_ring(step)
        if step and step["form"] == "form-record_circumstances":
            break
    assert step and step["form"] == "form-record_circumstances" and step["tag"] == "input", step
    assert step["name"] == "treated_abroad", step  # the form's first control
    press(driver, Keys.SPACE)
    until(driver, "return document.activeElement.checked === true")
    while (step := press(driver, Keys.TAB)) and step["name"] != "reason":
        assert step["form"] == "form-record_circumstances", step
    press(driver, "asked the patient by phone")
    step = press(driver, Keys.TAB)
    assert step and step["tag"] == "button" and step["form"] == "form-record_circumstances", step
    assert_ring(step)
    page = driver.find_element(By.TAG_NAME, "html")
    press(driver, Keys.ENTER)
    WebDriverWait(driver, WAIT).until(lambda d: not _alive(page))
    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script("return document.readyState") == "complete")
    assert int(text_of(driver, "version")) == version + 1
    timeline = driver.find_element(By.CSS_SELECTOR, "table.timeline").text
    assert "record_circumstances" in timeline and "asked the patient by phone" in timeline


def _alive(element: Any) -> bool:
    from selenium.common.exceptions import WebDriverException

    try:
        element.is_enabled()
        return True
    except WebDriverException:
        return False


def tab_walks_every_control_and_leaves(site: Site, driver: Any, case_page: str) -> None:
    """Tab from the top reaches as many distinct controls as the page has, each with its ring,
    then leaves the page (focus on nothing, or back at the top); Shift+Tab walks back."""
    driver.get(case_page)
    count = driver.execute_script(TABBABLE)
    assert count > 20  # the header, forms, details and the timeline's region: a real walk
    walked: list[tuple[str, str, str | None, str]] = []
    for _ in range(MAX_TABS):
        step = press(driver, Keys.TAB)
        if step is None or (walked and step["text"] == walked[0][3] and step["tag"] == walked[0][0]):
            break  # left the page, or wrapped round to the skip link
        assert_ring(step)
        walked.append((step["tag"], step["id"], step["name"], step["text"]))
    else:
        raise AssertionError(f"still on the page after {MAX_TABS} Tabs: a keyboard trap near {walked[-3:]}")
    assert len(walked) == count, (len(walked), count)
    assert len(set(walked)) == len(walked)  # every stop a control of its own: none visited twice
    back = press(driver, Keys.SHIFT, Keys.TAB)  # from outside the page (or the top) back to the last control
    assert back is not None and (back["tag"], back["id"], back["name"], back["text"]) in (walked[-1], walked[0])


def the_due_date_count_opens_by_keyboard(site: Site, driver: Any, case_page: str) -> None:
    """Tab to a deadline's "How the due date was counted" toggle; Enter opens it, Enter again
    closes it."""
    driver.get(case_page)
    for _ in range(MAX_TABS):
        step = press(driver, Keys.TAB)
        assert step is not None, "left the page without reaching the toggle"
        if step["tag"] == "summary":
            break
    assert_ring(step)
    is_open = "return document.activeElement.parentElement.open"
    assert driver.execute_script(is_open) is False
    press(driver, Keys.ENTER)
    until(driver, f"{is_open} === true")
    assert "working day" in driver.find_element(By.CSS_SELECTOR, "details ol.explain").text
    press(driver, Keys.ENTER)
    until(driver, f"{is_open} === false")


def test_the_case_page_by_keyboard_alone(site: Site, driver: Any) -> None:
    cases = fill(site)
    sign_in(driver, site, "consultant")
    case_page = f"{site.base}/ui/cases/{cases.opened}"
    skip_link_then_main(site, driver, case_page)
    submit_a_form_by_keyboard(site, driver, case_page)
    tab_walks_every_control_and_leaves(site, driver, case_page)
    the_due_date_count_opens_by_keyboard(site, driver, f"{site.base}/ui/cases/{cases.complete}")
