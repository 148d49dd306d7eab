"""One review page (`ReviewServer`, what `edge-agent platform-review-page` runs) over TLS on 127.0.0.1,
on a real PostgreSQL + PostGIS holding three platform cases filed as the receiver files them (signed
records, their evidence files in store_dir), and one headless Chromium for the whole module."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from agent.cases.case import case_id
from agent.config import load_receiver_config
from agent.geo.earth import Location
from agent.geo.geometry import offset
from cityplatform.review.server import ReviewServer
from cityplatform.store import EvidenceFile
from protocol.signing import Signer
from tests.browser import browser, https_request, log_in_form, self_signed  # noqa: F401 (browser: a fixture)
from tests.case_records import make_case
from tests.cityplatform.platform_records import PILE, SEEN
from tests.cityplatform.postgres import Postgres
from tests.conftest import REPO, free_port
from webauth.passwords import hash_password

USER, PASSWORD = "inspector-7", "grid-office-2026"
GRID = {"garbage_pile": {"code": {"standard": "GB/T 30428.2-2013", "code": "01-10", "name": "暴露垃圾"},
                         "due_working_hours": 4}}  # fmt: skip


@dataclass
class Page:
    """The running review page, its store and the platform case ids, oldest first."""

    server: ReviewServer
    url: str
    port: int
    cases: list[int]
    config_file: Path  # receiver.yaml, as `edge-agent platform-training-set -c` reads it

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, headers, body) of one request to the page."""
        return https_request(self.port, method, path, body, headers)

    def reviews(self) -> list[tuple]:
        with self.server.store.direct() as tx:
            return [tuple(row) for row in tx.run(
                "SELECT platform_case_id, decision, reason, corrected_type, reviewer FROM reviews ORDER BY id", ()
            ).fetchall()]  # fmt: skip


def snapshot(colour: tuple[int, int, int]) -> bytes:
    image = np.full((120, 160, 3), colour, np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def file_case(server: ReviewServer, store_dir: Path, signer: Signer, agent_id: str, north_m: float, east_m: float,
              minutes: int,
              files: dict[str, bytes], explanation: dict | None = None) -> int:  # fmt: skip
    """Store one agent's case and its evidence files as the receiver does; its platform case id.
    `explanation`: the record's (its `boxes` with a crop.jpg in `files` are what the training export needs)."""
    seen = SEEN + timedelta(minutes=minutes)
    lat, lon = offset(*PILE, north_m, east_m)
    case = make_case(case_id(agent_id, "front", "garbage_pile", seen), 1, seen, agent_id=agent_id,
                     source_id="front", location=Location(lat, lon, 5.0, "ray_cast"), files=files)  # fmt: skip
    case = replace(case, explanation=explanation or {})
    record = signer.sign(case.to_record())
    store = server.store
    with store.transaction(f"case:{record['id']}") as tx:
        tx.insert_case(record["id"], 1, agent_id, seen.timestamp(), json.dumps(record))  # as received
        store.case_stored(tx, record, seen.timestamp())
        for name, data in files.items():
            folder = store_dir / "cases" / agent_id / record["id"] / "r1"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
            digest = hashlib.sha256(data).hexdigest()
            tx.add_evidence(EvidenceFile(agent_id, record["id"], 1, name, 1, digest, len(data)), time.time())
        return tx.run("SELECT platform_case_id FROM reports WHERE case_id = ?", (record["id"],)).fetchone()[0]


CaseFiler = Callable[[ReviewServer, Path, Signer], list[int]]


@contextmanager
def serve_page(folder: Path, postgres_server: Postgres, file_cases: CaseFiler) -> Iterator[Page]:
    """A review page on a fresh database, with the platform cases that `file_cases` stores (oldest first)."""
    cert, key = self_signed(folder)
    document = {
        "mqtt": {"host": "127.0.0.1", "port": free_port()},  # not used by the page
        "store_dir": str(folder / "platform"),
        "postgres": postgres_server.database().model_dump(),
        "platform": {"grid": {"file": str(REPO / "configs" / "example-grid.geojson")}, "types": GRID},
        "review": {
            "port": free_port(),
            "user": USER,
            "password_hash": hash_password(PASSWORD),
            "tls": {"cert_file": str(cert), "key_file": str(key)},
        },
    }
    (folder / "receiver.yaml").write_text(yaml.safe_dump(document, allow_unicode=True))
    config = load_receiver_config(folder / "receiver.yaml")
    server = ReviewServer(config)
    cases = file_cases(server, config.store_dir, Signer.load_or_create(folder / "keys"))
    server.start()
    try:
        yield Page(server, f"https://127.0.0.1:{server.port}", server.port, cases, folder / "receiver.yaml")
    finally:
        server.stop()


def three_cases(server: ReviewServer, store_dir: Path, signer: Signer) -> list[int]:
    """200 m and more apart, in three grid cells: three platform cases, the newest found last."""
    clip = (REPO / "samples" / "street-garbage.mp4").read_bytes()
    return [
        file_case(server, store_dir, signer, "car-1", 0, 0, 0, {"snapshot.jpg": snapshot((0, 0, 200))}),
        file_case(server, store_dir, signer, "car-2", 200, 0, 5, {"snapshot.jpg": snapshot((0, 200, 0))}),
        file_case(server, store_dir, signer, "cam-3", 0, 250, 10,
                  {"snapshot.jpg": snapshot((200, 0, 0)), "clip.mp4": clip}),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory, postgres_server: Postgres) -> Iterator[Page]:
    with serve_page(tmp_path_factory.mktemp("review"), postgres_server, three_cases) as served:
        yield served


def log_in(driver: webdriver.Chrome, page: Page) -> None:
    """Through the form, as an inspector would: the page redirects to /login first."""
    log_in_form(
        driver, page.url, USER, PASSWORD, lambda d: d.find_elements(By.CSS_SELECTOR, "#detail[data-case]"), "queue"
    )


def selected(driver: webdriver.Chrome, case: int) -> None:
    WebDriverWait(driver, 20).until(
        lambda d: d.find_element(By.ID, "detail").get_attribute("data-case") == str(case), f"case {case} not shown"
    )


def gone(driver: webdriver.Chrome, case: int) -> None:
    WebDriverWait(driver, 20).until(lambda d: not d.find_elements(By.ID, f"case-{case}"), f"case {case} still queued")
