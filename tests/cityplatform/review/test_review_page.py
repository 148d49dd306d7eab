"""The inspectors' review page in a real headless Chromium over a real PostgreSQL + PostGIS: the login
gate, the queue of new cases newest first on the grid map with their evidence, a case confirmed and
others rejected and corrected with the keyboard (each a `reviews` row, as `platform-review` writes),
and a change without the CSRF token refused. The tests run in order on one page and one browser."""

from __future__ import annotations

import json

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from cityplatform.reviews import latest_reviews
from tests.browser import SHARED_SCRIPT, session_headers
from tests.cityplatform.review.conftest import USER, Page, gone, log_in, selected

PAGES = ["/", "/static/review.js", "/static/review.html"]


def apis(page: Page) -> list[str]:
    return ["/api/session", "/api/queue", "/api/grid", f"/api/cases/{page.cases[0]}", "/api/evidence/car-1/x/r1/a.jpg"]


def test_without_a_login_every_page_redirects_and_every_api_answers_401(page: Page) -> None:
    for path in PAGES:
        status, headers, _ = page.request("GET", path)
        assert (status, headers.get("location")) == (303, f"/login?next={path}"), path
    for path in apis(page):
        status, _, body = page.request("GET", path)
        assert status == 401 and "log in" in json.loads(body)["error"], path
    body = json.dumps({"decision": "confirm"}).encode()
    assert page.request("POST", f"/api/cases/{page.cases[0]}/review", body)[0] == 401
    assert page.reviews() == []
    assert page.request("GET", "/healthz")[0] == 200
    status, _, body = page.request("GET", "/login?lang=en")  # zh-CN by default, English on request
    assert status == 200 and "Log in · case review" in body.decode()
    assert "登录 · 案件审核" in page.request("GET", "/login")[2].decode()


def test_log_in_and_see_the_queue_newest_first_on_the_grid_map(page: Page, browser) -> None:
    log_in(browser, page)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    rows = [row.get_attribute("data-id") for row in browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr")]
    assert rows == [str(case) for case in reversed(page.cases)]
    newest = page.cases[-1]
    assert browser.find_element(By.ID, "detail").get_attribute("data-case") == str(newest)
    detail = browser.find_element(By.ID, "detail").text
    assert "cam-3" in detail and "EX-0" in detail and "暴露垃圾" in detail  # agent, grid cell, type
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return document.querySelector('#detail img.evidence').naturalWidth") == 160
    )
    clip = "return document.querySelector('#detail video.clip').readyState"
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(clip) >= 1)  # the stored clip's metadata loaded
    canvas = browser.find_element(By.ID, "map")
    assert canvas.get_attribute("data-cases") == "3"
    red = "return Array.from(document.getElementById('map').getContext('2d').getImageData(0, 0, 420, 320).data)"
    red += ".filter((v, i, a) => i % 4 == 0 && v > 200 && a[i + 1] < 80 && a[i + 2] < 80).length"
    assert browser.execute_script(red) > 30  # the selected case's dot drawn over the grid's cells
    keys = browser.find_element(By.ID, "keys").text
    assert all(key in keys for key in ("j", "k", "c", "r", "t"))


def test_the_page_runs_on_webauths_shared_script(page: Page, browser) -> None:
    """page.js (CSRF token, JSON calls, top bar) is one file that the review page and the box's page serve."""
    status, headers, body = page.request("GET", "/static/page.js", headers=session_headers(browser))
    assert status == 200 and "javascript" in headers["content-type"] and body == SHARED_SCRIPT.read_bytes()
    loaded = "return Array.from(document.scripts, (s) => new URL(s.src).pathname)"
    assert browser.execute_script(loaded) == ["/static/page.js", "/static/review.js"]


def test_confirm_one_with_the_keyboard_and_see_its_reviews_row(page: Page, browser) -> None:
    _newest, middle, oldest = reversed(page.cases)
    ActionChains(browser).send_keys("j").perform()
    selected(browser, middle)
    ActionChains(browser).send_keys("c").perform()
    gone(browser, middle)
    assert page.reviews() == [(middle, "confirm", None, None, USER)]
    assert str(middle) in browser.find_element(By.ID, "message").text
    selected(browser, oldest)  # the next one down the queue


def test_a_review_without_the_csrf_token_is_refused(page: Page, browser) -> None:
    headers = session_headers(browser) | {"Content-Type": "application/json"}
    body = json.dumps({"decision": "confirm"}).encode()
    for sent in (headers, headers | {"X-CSRF-Token": "0" * 64}):
        status, _, answer = page.request("POST", f"/api/cases/{page.cases[0]}/review", body, sent)
        assert status == 403 and "CSRF" in json.loads(answer)["error"]
    assert len(page.reviews()) == 1


def test_bad_input_is_refused_with_the_fix_and_loses_nothing(page: Page, browser) -> None:
    token = browser.execute_script("return document.querySelector('meta[name=csrf]').content")
    headers = {"Cookie": f"session={browser.get_cookie('session')['value']}", "X-CSRF-Token": token}
    oldest = page.cases[0]
    for path, body, words in (
        (f"/api/cases/{oldest}/review", {"decision": "reject", "reason": "ugly"}, "reason 'ugly': give one of"),
        (f"/api/cases/{oldest}/review", {"decision": "correct", "type": "garbage_pile"}, "confirm it instead"),
        ("/api/cases/999999/review", {"decision": "confirm"}, "platform case 999999 does not exist"),
        (f"/api/cases/{2**64}/review", {"decision": "confirm"}, f"platform case {2**64} does not exist"),
        (f"/api/cases/{oldest}/review", ["confirm"], 'send JSON {"decision"'),
    ):
        status, _, answer = page.request("POST", path, json.dumps(body).encode(), headers)
        assert status == 400 and words in json.loads(answer)["error"], (body, answer)
    assert len(page.reviews()) == 1
    assert page.request("GET", f"/api/cases/{2**64}", headers=headers)[0] == 404
    status, _, answer = page.request("GET", f"/api/cases/{oldest}", headers=headers)
    url = json.loads(answer)["reports"][0]["evidence"][0]["url"]
    status, response_headers, _ = page.request("GET", url, headers=headers)
    assert status == 200 and response_headers["content-type"] == "image/jpeg"
    agent_id, case_id = url.split("/")[3:5]
    for forged in (f"/api/evidence/{agent_id}/{case_id}/r1/..%2F..%2F..%2Freceiver.yaml",
                   f"/api/evidence/..%2F{agent_id}/{case_id}/r1/snapshot.jpg",
                   f"/api/evidence/{agent_id}/{case_id}/r2/snapshot.jpg"):  # fmt: skip
        assert page.request("GET", forged, headers=headers)[0] == 404, forged


def test_reject_one_with_a_reason_and_correct_the_type_of_another(page: Page, browser) -> None:
    newest, middle, oldest = reversed(page.cases)
    ActionChains(browser).send_keys("r").perform()  # reasons: 1 not_a_problem, 2 duplicate, ...
    choices = [item.get_attribute("data-choice") for item in browser.find_elements(By.CSS_SELECTOR, "#choices li")]
    assert choices == ["not_a_problem", "duplicate", "wrong_type", "outside_rules"]
    ActionChains(browser).send_keys("2").perform()
    gone(browser, oldest)
    selected(browser, newest)
    ActionChains(browser).send_keys("t").perform()  # the other types: street_vending, overflowing_bin, ...
    choices = [item.get_attribute("data-choice") for item in browser.find_elements(By.CSS_SELECTOR, "#choices li")]
    ActionChains(browser).send_keys(str(choices.index("overflowing_bin") + 1)).perform()
    gone(browser, newest)
    assert page.reviews() == [
        (middle, "confirm", None, None, USER),
        (oldest, "reject", "duplicate", None, USER),
        (newest, "correct", None, "overflowing_bin", USER),
    ]
    with page.server.store.direct() as tx:  # what `edge-agent platform-training-set` reads
        latest = {row[0]: row[2:] for row in latest_reviews(tx.run)}
    assert latest == {
        middle: ("confirm", None, None),
        oldest: ("reject", "duplicate", None),
        newest: ("correct", None, "overflowing_bin"),
    }
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "empty").is_displayed())
    cookie = {"Cookie": f"session={browser.get_cookie('session')['value']}"}
    status, _, body = page.request("GET", "/api/queue", headers=cookie)
    assert status == 200 and json.loads(body) == []
