"""Decisions made on the review page feed training: in a real headless Chromium an inspector confirms
one case, rejects another as not a problem and corrects the type of a third; `edge-agent
platform-training-set` then writes a YOLO dataset whose labels (the corrected type applied) and hard
negative match those decisions, and `edge-agent train --data` accepts it. The cases carry what the
export needs: a crop.jpg and the boxes in their signed record (`explanation.boxes`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from agent.cases.case import crop_window
from cityplatform.review.server import ReviewServer
from protocol.signing import Signer
from tests.cityplatform.postgres import Postgres
from tests.cityplatform.review.conftest import USER, Page, file_case, gone, log_in, selected, serve_page, snapshot
from tests.cityplatform.training_checks import assert_labels_match, assert_train_accepts, case_of, export

WIDTH, HEIGHT = 160, 120  # the snapshot's frame


def evidence(colour: tuple[int, int, int], box: list[float]) -> tuple[dict[str, bytes], dict]:
    """(snapshot.jpg and crop.jpg, the record's explanation) of one detection at `box` in the frame."""
    left, top, right, bottom = crop_window(np.array(box), WIDTH, HEIGHT)
    crop = np.full((bottom - top, right - left, 3), colour, np.uint8)
    files = {"snapshot.jpg": snapshot(colour), "crop.jpg": cv2.imencode(".jpg", crop)[1].tobytes()}
    boxes = {"frame_px": [WIDTH, HEIGHT], "xyxy": [box], "crop_px": [left, top, right, bottom]}
    return files, {"boxes": boxes}


def cases_with_crops(server: ReviewServer, store_dir: Path, signer: Signer) -> list[int]:
    """Three platform cases in three grid cells, each with a crop and its boxes; the newest found last."""
    return [
        file_case(server, store_dir, signer, agent_id, north_m, east_m, minutes, *evidence(colour, box))
        for agent_id, north_m, east_m, minutes, colour, box in (
            ("car-1", 0, 0, 0, (0, 0, 200), [20.0, 30.0, 90.0, 80.0]),
            ("car-2", 200, 0, 5, (0, 200, 0), [60.0, 40.0, 100.0, 70.0]),
            ("cam-3", 0, 250, 10, (200, 0, 0), [70.0, 10.0, 150.0, 100.0]),
        )
    ]


@pytest.fixture(scope="module")
def crops_page(tmp_path_factory: pytest.TempPathFactory, postgres_server: Postgres) -> Iterator[Page]:
    with serve_page(tmp_path_factory.mktemp("review-training"), postgres_server, cases_with_crops) as served:
        yield served


def choose(browser, key: str, choice: str) -> None:
    """Open the reason (r) or type (t) list and press the number of `choice` in it."""
    ActionChains(browser).send_keys(key).perform()
    choices = [item.get_attribute("data-choice") for item in browser.find_elements(By.CSS_SELECTOR, "#choices li")]
    ActionChains(browser).send_keys(str(choices.index(choice) + 1)).perform()


def test_decisions_on_the_page_become_the_yolo_dataset_that_train_accepts(
    crops_page: Page, browser, tmp_path: Path
) -> None:
    oldest, middle, newest = crops_page.cases
    log_in(browser, crops_page)
    selected(browser, newest)
    ActionChains(browser).send_keys("c").perform()
    gone(browser, newest)
    selected(browser, middle)
    choose(browser, "r", "not_a_problem")
    gone(browser, middle)
    selected(browser, oldest)
    choose(browser, "t", "overflowing_bin")
    gone(browser, oldest)
    assert crops_page.reviews() == [
        (newest, "confirm", None, None, USER),
        (middle, "reject", "not_a_problem", None, USER),
        (oldest, "correct", None, "overflowing_bin", USER),
    ]

    out = tmp_path / "dataset"
    reviewed = export(crops_page.config_file, out, tmp_path)
    records = {agent_id: case_of(crops_page.server.store, agent_id)[1] for agent_id in ("car-1", "car-2", "cam-3")}
    # confirmed: garbage (0); rejected as not a problem: a hard negative; corrected: overflow (2)
    assert_labels_match(out, records, {"cam-3": 0, "car-2": None, "car-1": 2})
    assert reviewed["reviewed_confirm"] == reviewed["reviewed_reject"] == reviewed["reviewed_correct"] == 1
    assert_train_accepts(out, tmp_path / "run", reviewed, 3)
