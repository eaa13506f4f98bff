"""The web desk in a real browser against a real ``serve``: sign in, open and find a patient's
Royal Doctors case, take it through its route by the case page's forms (three roles), watch the
board change, and the refusals: a form without its CSRF token, another organisation's case, a
form for a version the case has left. Every request the browser made stayed on 127.0.0.1.

One test, its steps in order on one server and one browser (a desk's working day): the steps
build on each other, and pytest-xdist would otherwise spread them over workers."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
from selenium.webdriver.common.by import By

from .harness import Site, fire, requested_urls, sign_in, sign_out, submit, text_of

PATIENT = "PX-RD-0001"
SEEN: list[str] = []
CASE: dict[str, str] = {}


def column_count(driver: Any, state: str) -> int:
    badge = driver.find_element(By.CSS_SELECTOR, f"section[data-state='{state}'] .badge")
    return int(badge.text)


def seen(driver: Any) -> None:
    SEEN.extend(requested_urls(driver))


def sign_in_open_a_royal_doctors_case_and_find_the_patient(site: Site, driver: Any) -> None:
    driver.get(f"{site.base}/ui/board")
    assert driver.current_url.endswith("/ui/sign-in")  # not signed in yet
    driver.find_element(By.ID, "token").send_keys("sot_not-a-token")
    submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/ui/sign-in'] button"))
    assert "not known" in driver.find_element(By.CSS_SELECTOR, ".problem").text
    sign_in(driver, site, "consultant")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert column_count(driver, "requested") == 0
    driver.find_element(By.ID, "patient_ref").send_keys(PATIENT)
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "open-route")).select_by_value("royal-doctors")
    submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/ui/cases'] button"))
    found = re.search(r"/ui/cases/(so-[a-z0-9]+)$", driver.current_url)
    assert found, driver.current_url
    CASE["id"] = found.group(1)
    assert text_of(driver, "state") == "requested"
    assert "was opened" in driver.find_element(By.CSS_SELECTOR, ".notice").text

    driver.get(f"{site.base}/ui/search")
    driver.find_element(By.ID, "patient_ref").send_keys(PATIENT)
    submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/ui/search'] button"))
    links = driver.find_elements(By.CSS_SELECTOR, "main table a")
    assert [a.text for a in links] == [CASE["id"]]
    driver.get(f"{site.base}/ui/board")
    assert column_count(driver, "requested") == 1
    seen(driver)


def take_the_case_through_its_route_by_forms(site: Site, driver: Any) -> None:
    case_page = f"{site.base}/ui/cases/{CASE['id']}"
    driver.get(case_page)
    fire(driver, "record_circumstances")  # every box unticked: none of them holds
    fire(driver, "give_consent", {"basis": "written", "scope": "full dossier to Royal Doctors"})
    fire(driver, "refer")
    assert text_of(driver, "state") == "referred"
    for item in ("medical_history", "examinations", "lab_reports"):
        fire(driver, "receive_item", {"item": item})
    checklist = driver.find_element(By.ID, "h-checklist").find_element(By.XPATH, "..").text
    assert "missing" not in checklist and checklist.count("received") == 3
    fire(driver, "receive_dossier")
    assert text_of(driver, "state") == "dossier_received"
    deadlines = driver.find_element(By.ID, "h-deadlines").find_element(By.XPATH, "..")
    assert "royal-doctors-report: running" in deadlines.text
    driver.find_element(By.CSS_SELECTOR, "details summary").click()
    assert "working day 18" in deadlines.text
    driver.get(f"{site.base}/ui/board")
    assert column_count(driver, "requested") == 0
    assert column_count(driver, "dossier_received") == 1
    seen(driver)
    sign_out(driver)

    sign_in(driver, site, "doctor")
    driver.get(case_page)
    fire(driver, "review")
    fire(driver, "return_advice", {"outcome": "agrees"})
    assert text_of(driver, "state") == "advice_returned"
    seen(driver)
    sign_out(driver)

    sign_in(driver, site, "consultant")
    driver.get(case_page)
    fire(driver, "hand_back")
    assert text_of(driver, "state") == "back_to_first_provider"
    timeline = driver.find_element(By.CSS_SELECTOR, "table.timeline").text
    for event in ("open", "refer", "receive_dossier", "review", "return_advice", "hand_back"):
        assert event in timeline
    driver.get(f"{site.base}/ui/board")
    assert column_count(driver, "dossier_received") == 0
    assert column_count(driver, "back_to_first_provider") == 1
    seen(driver)


def a_form_without_its_csrf_token_is_refused_and_changes_nothing(site: Site, driver: Any) -> None:
    driver.get(f"{site.base}/ui/board")
    driver.find_element(By.ID, "patient_ref").send_keys("PX-RD-0002")
    submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/ui/cases'] button"))
    case_id = driver.current_url.rsplit("/", 1)[1]
    version = text_of(driver, "version")
    driver.execute_script("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
    fire(driver, "record_circumstances")
    assert "The form was refused" in driver.find_element(By.TAG_NAME, "h1").text
    assert "Status 403" in driver.page_source
    driver.get(f"{site.base}/ui/cases/{case_id}")
    assert text_of(driver, "version") == version
    assert "record_circumstances" not in driver.find_element(By.CSS_SELECTOR, "table.timeline").text
    # a wrong token is no better than none
    driver.execute_script("document.querySelectorAll('input[name=csrf]').forEach(e => e.value = 'forged')")
    fire(driver, "record_circumstances")
    assert "Status 403" in driver.page_source
    seen(driver)


def a_form_for_an_old_version_says_the_case_changed(site: Site, driver: Any) -> None:
    driver.get(f"{site.base}/ui/board")
    driver.find_element(By.ID, "patient_ref").send_keys("PX-RD-0003")
    submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/ui/cases'] button"))
    case_id = driver.current_url.rsplit("/", 1)[1]
    answer = httpx.post(f"{site.base}/cases/{case_id}/events", json={"event": "withdraw", "reason": "wish"},
                        headers={"Authorization": f"Bearer {site.tokens['coordinator']}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    fire(driver, "give_consent", {"basis": "written", "scope": "everything"})  # the page still shows version 1
    assert "The case changed after you opened it" in driver.find_element(By.ID, "problem").text
    assert text_of(driver, "state") == "withdrawn"
    timeline = driver.find_element(By.CSS_SELECTOR, "table.timeline").text
    assert "give_consent" in timeline  # the refusal is in the audit trail, as from the API
    seen(driver)


def another_organisations_case_is_not_found(site: Site, driver: Any) -> None:
    made = httpx.post(f"{site.base}/cases", json={"patient_ref": "PX-B-0001", "route": "domestic"},
                      headers={"Authorization": f"Bearer {site.tokens['other']}"})  # fmt: skip
    assert made.status_code == 201, made.text
    driver.get(f"{site.base}/ui/cases/{made.json()['case_id']}")
    assert "No such case" in driver.find_element(By.TAG_NAME, "h1").text
    assert "PX-B-0001" not in driver.page_source
    driver.get(f"{site.base}/ui/search?patient_ref=PX-B-0001")
    assert "No cases." in driver.page_source
    seen(driver)


def the_auditor_sees_the_access_log_and_verifies(site: Site, driver: Any) -> None:
    sign_out(driver)
    sign_in(driver, site, "auditor")
    driver.get(f"{site.base}/ui/audit?verify=1")
    assert "No problems found." in text_of(driver, "verify-result")
    log = driver.find_element(By.ID, "h-log").find_element(By.XPATH, "..").text
    assert "zc-anna" in log and "history" in log
    seen(driver)


def dutch_for_a_dutch_browser_and_the_language_switch(site: Site, driver: Any) -> None:
    submit(driver, driver.find_element(By.LINK_TEXT, "Nederlands"))
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "nl"
    assert "Toegangslog" in driver.page_source
    submit(driver, driver.find_element(By.LINK_TEXT, "English"))
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    seen(driver)


def swagger_page_loads_from_this_host(site: Site, driver: Any) -> None:
    driver.get(f"{site.base}/docs")
    driver.find_element(By.ID, "swagger-ui")
    seen(driver)


def no_request_left_127_0_0_1(site: Site, driver: Any) -> None:
    seen(driver)
    assert len(SEEN) > 20
    assets = [u for u in SEEN if "/docs/assets/" in u]
    assert assets, "the Swagger page's assets were requested"
    away = [u for u in SEEN if urlsplit(u).scheme not in ("data", "about", "blob")
            and urlsplit(u).hostname != "127.0.0.1"]  # fmt: skip
    assert away == []


def test_a_desks_working_day(site: Site, driver: Any) -> None:
    sign_in_open_a_royal_doctors_case_and_find_the_patient(site, driver)
    take_the_case_through_its_route_by_forms(site, driver)
    a_form_without_its_csrf_token_is_refused_and_changes_nothing(site, driver)
    a_form_for_an_old_version_says_the_case_changed(site, driver)
    another_organisations_case_is_not_found(site, driver)
    the_auditor_sees_the_access_log_and_verifies(site, driver)
    dutch_for_a_dutch_browser_and_the_language_switch(site, driver)
    swagger_page_loads_from_this_host(site, driver)
    no_request_left_127_0_0_1(site, driver)
