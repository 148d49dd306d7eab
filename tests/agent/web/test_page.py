"""The box's page in a real headless Chromium against a running agent with two real RTSP cameras: the
login gate, the live view with boxes drawn, a zone drawn and applied, a case opened and its clip played.
The tests run in order on one agent and one browser (module fixtures), each building on the last."""

from __future__ import annotations

import json

import cv2
import numpy as np
import yaml
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from agent.web.live import _COLOURS
from tests.agent.updates.helpers import wait_for
from tests.agent.web.conftest import Box, log_in, sources
from tests.browser import SHARED_SCRIPT, session_headers

PAGES = ["/", "/zones", "/cases", "/static/live.js", "/static/app.css"]
APIS = ["/api/session", "/api/sources", "/api/sources/cam-1/frame.jpg", "/api/cases", "/api/grid?lat=30&lon=120"]


def test_without_a_login_every_page_redirects_and_every_api_answers_401(box: Box) -> None:
    for path in PAGES:
        status, headers, _ = box.request("GET", path)
        assert (status, headers.get("location")) == (303, f"/login?next={path}"), path
    for path in APIS:
        status, _, body = box.request("GET", path)
        assert status == 401 and "log in" in json.loads(body)["error"], path
    zones = json.dumps({"zones": []}).encode()
    status, _, _ = box.request("POST", "/api/sources/cam-1/zones", zones, {"Content-Type": "application/json"})
    assert status == 401
    forged = {"Cookie": "session=eyJ1IjoiaW5zdGFsbGVyIiwiZSI6OTk5OTk5OTk5OTksIm4iOiJ4In0.forged"}
    assert box.request("GET", "/api/sources", headers=forged)[0] == 401
    status, _, body = box.request("GET", "/healthz")  # the one path left open, for a supervisor's probe
    assert status == 200 and json.loads(body)["agent_id"] == "box-1"


def test_log_in_and_see_the_live_source_with_its_boxes_drawn(box: Box, browser) -> None:
    log_in(browser, box)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"  # the default language
    assert browser.find_element(By.CSS_SELECTOR, 'nav a[href="/"]').text == "实时画面"
    frames = lambda: int(browser.find_element(By.ID, "frame-cam-1").get_attribute("data-frames") or 0)  # noqa: E731
    assert WebDriverWait(browser, 60).until(lambda d: frames() >= 3), "the live frame did not refresh"
    assert browser.execute_script("return document.getElementById('frame-cam-1').naturalWidth") > 0
    detections = lambda: int(browser.find_element(By.ID, "count-cam-1-detections").text)  # noqa: E731
    WebDriverWait(browser, 60).until(lambda d: detections() > 0)
    assert "live" in browser.find_element(By.CSS_SELECTOR, "#card-cam-1 .state").text
    drawn_on_map = "return Array.from(document.getElementById('map-cam-1').getContext('2d')"
    drawn_on_map += ".getImageData(0, 0, 200, 200).data).filter((v, i) => i % 4 == 3 && v > 0).length"
    assert browser.execute_script(drawn_on_map) > 20  # the camera's position on the map canvas
    headers = session_headers(browser)
    drawn = _box_pixels(box, headers, "/api/sources/cam-1/frame.jpg")
    raw = _box_pixels(box, headers, "/api/sources/cam-1/frame.jpg?raw=1")
    assert drawn > 200 and raw < drawn / 10, (drawn, raw)  # the detector's boxes are on the served frame


def _box_pixels(box: Box, headers: dict[str, str], path: str) -> int:
    """Pixels in the colour of the first detector's boxes, in the frame the page serves."""
    status, response_headers, body = box.request("GET", path, headers=headers)
    assert status == 200 and response_headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    return int(np.all(np.abs(image.astype(int) - _COLOURS[0]) < 40, axis=2).sum())


def test_the_page_runs_on_webauths_shared_script(box: Box, browser) -> None:
    """page.js (CSRF token, JSON calls, top bar) is one file that the box's page and the review page serve."""
    status, headers, body = box.request("GET", "/static/page.js", headers=session_headers(browser))
    assert status == 200 and "javascript" in headers["content-type"] and body == SHARED_SCRIPT.read_bytes()
    loaded = "return Array.from(document.scripts, (s) => new URL(s.src).pathname)"
    assert browser.execute_script(loaded) == ["/static/page.js", "/static/common.js", "/static/live.js"]


def test_a_change_without_the_csrf_token_is_refused(box: Box, browser) -> None:
    headers = session_headers(browser) | {"Content-Type": "application/json"}
    before = box.config.read_text()
    body = json.dumps({"zones": [{"name": "x", "polygon_px": [[0, 0], [10, 0], [10, 10]]}]}).encode()
    status, _, answer = box.request("POST", "/api/sources/cam-1/zones", body, headers)
    assert status == 403 and "CSRF" in json.loads(answer)["error"]
    wrong = headers | {"X-CSRF-Token": "0" * 64}
    assert box.request("POST", "/api/sources/cam-1/zones", body, wrong)[0] == 403
    assert box.config.read_text() == before


def test_draw_a_zone_and_see_the_file_change_and_the_zone_applied(box: Box, browser) -> None:
    before = box.config.read_text()
    browser.get(box.url + "/zones")
    canvas = browser.find_element(By.ID, "canvas")
    WebDriverWait(browser, 20).until(lambda d: d.execute_script("return image && image.complete"))
    width, height = canvas.size["width"], canvas.size["height"]
    corners = [(0.1, 0.5), (0.9, 0.5), (0.9, 0.95), (0.1, 0.95)]  # the lower half of the picture, as fractions
    for fx, fy in corners:
        ActionChains(browser).move_to_element_with_offset(
            canvas, int((fx - 0.5) * width), int((fy - 0.5) * height)
        ).click().perform()
    name = browser.find_element(By.ID, "zone-name")
    name.clear()
    name.send_keys("kerb")
    browser.find_element(By.CSS_SELECTOR, '#types input[value="garbage_pile"]').click()
    browser.find_element(By.ID, "close").click()
    browser.find_element(By.ID, "save").click()
    result = WebDriverWait(browser, 120).until(lambda d: d.find_element(By.ID, "result").text.strip("…") or None)
    assert "applied" in result, result

    saved = yaml.safe_load(box.config.read_text())
    zones = {s["id"]: s.get("zones") for s in saved["sources"]}
    assert zones["cam-2"] is None and len(zones["cam-1"]) == 1, zones
    zone = zones["cam-1"][0]
    assert zone["name"] == "kerb" and zone["types"] == ["garbage_pile"]
    for (x, y), (fx, fy) in zip(zone["polygon_px"], corners, strict=True):  # in the camera's 640x480 pixels
        assert abs(x - fx * 640) <= 8 and abs(y - fy * 480) <= 8, zone["polygon_px"]
    assert (box.config.parent / "agent.yaml.bak").read_text() == before  # the previous file is kept
    report = box.agent.report()
    assert (report["status"], report["restarted"], report["kept"]) == ("applied", ["cam-1"], ["cam-2"]), report
    assert "(web page)" in report["origin"]
    live = sources(box, session_headers(browser))
    assert live["cam-1"]["zones"][0]["name"] == "kerb"  # the running source has the zone
    assert wait_for(lambda: sources(box, session_headers(browser))["cam-1"]["state"] == "live", 30)


def test_open_a_case_and_play_its_clip(box: Box, browser) -> None:
    browser.get(box.url + "/cases")

    def clip_row(driver):
        """A case revision with its clip (revision 2, once the post-roll has passed); lists again until one."""
        rows = driver.find_elements(By.CSS_SELECTOR, '#list tbody tr[data-clip="1"]')
        if not rows:
            driver.find_element(By.CSS_SELECTOR, '#filter button[type="submit"]').click()
        return rows[0] if rows else None

    WebDriverWait(browser, 120, poll_frequency=1).until(clip_row).click()
    video = WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "clip"))
    assert browser.find_element(By.ID, "verified").get_attribute("class") == "ok"
    assert (
        "tracks" in browser.find_element(By.ID, "explanation").text or browser.find_element(By.ID, "explanation").text
    )
    browser.execute_script("arguments[0].muted = true; arguments[0].play();", video)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return arguments[0].readyState", video) >= 2)
    start = browser.execute_script("return arguments[0].currentTime", video)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return arguments[0].currentTime", video) > start + 0.5)
    assert browser.execute_script("return arguments[0].error", video) is None
    src = video.get_attribute("src")
    status, headers, body = box.request("GET", src.removeprefix(box.url), headers=session_headers(browser))
    assert status == 200 and headers["content-type"] == "video/mp4" and body[4:8] == b"ftyp"


def test_the_page_switches_to_english(box: Box, browser) -> None:
    browser.get(box.url + "/")
    browser.find_element(By.ID, "lang").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en")
    assert browser.find_element(By.CSS_SELECTOR, 'nav a[href="/"]').text == "Live"


def test_the_case_list_filters_by_type_source_and_time(box: Box, browser) -> None:
    headers = session_headers(browser)

    def listed(query: str) -> list[dict]:
        status, _, body = box.request("GET", "/api/cases" + query, headers=headers)
        assert status == 200, body
        return json.loads(body)

    everything = listed("")
    types = {c["type"] for c in everything if c["on_disk"]}
    assert everything and types <= {"garbage_pile", "overflowing_bin"}, everything
    some = sorted(types)[0]
    assert {c["type"] for c in listed(f"?type={some}")} == {some}
    assert {c["source_id"] for c in listed("?source=cam-1")} == {"cam-1"}
    assert listed("?source=cam-2") == []  # the test pattern raises nothing
    assert listed("?since=2100-01-01T00:00") == [] and len(listed("?until=2100-01-01T00:00")) == len(everything)
    assert box.request("GET", "/api/cases?since=yesterday", headers=headers)[0] == 400
    assert box.request("GET", "/api/cases/not-a-uuid/1/case.json", headers=headers)[0] == 404
    case = everything[0]
    unlisted = f"/api/cases/{case['case_id']}/{case['revision']}/case.json"  # on disk, but not evidence
    assert box.request("GET", unlisted, headers=headers)[0] == 404
