"""JSON log lines: parseable, masked like the text lines, with the source id from a source's threads."""

from __future__ import annotations

import json
import subprocess
import sys

SECRET = "tpass-s3cr3t"


def run_logging(body: str, fmt: str) -> list[str]:
    code = f"import logging, threading\nfrom agent.logs import setup_logging\nsetup_logging(False, {fmt!r})\n{body}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()


def test_json_lines_mask_passwords_in_messages_and_tracebacks() -> None:
    body = (
        "try:\n"
        f"    raise OSError('cannot open rtsp://admin:{SECRET}@cam/x')\n"
        "except OSError:\n"
        f"    logging.getLogger('agent.t').exception('camera rtsp://admin:{SECRET}@cam/x')\n"
    )
    lines = run_logging(body, "json")
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["level"] == "ERROR" and record["logger"] == "agent.t"
    assert record["message"] == "camera rtsp://admin:***@cam/x"
    assert "rtsp://admin:***@cam/x" in record["exception"]
    assert "s3cr" not in lines[0] and "tpass" not in lines[0]


def test_json_lines_carry_the_source_of_the_thread_that_logged() -> None:
    body = (
        "log = logging.getLogger('streams.live')\n"
        "t = threading.Thread(target=lambda: log.warning('%s: down', 'gate'), name='decode:gate')\n"
        "t.start(); t.join()\n"
        "log.info('not about a source')\n"
        "log.info('given', extra={'source': 'front'})\n"
    )
    records = [json.loads(line) for line in run_logging(body, "json")]
    assert [r.get("source") for r in records] == ["gate", None, "front"]
    assert records[0]["message"] == "gate: down"


def test_text_lines_stay_as_they_were() -> None:
    lines = run_logging("logging.getLogger('agent.t').info('hello')", "text")
    assert len(lines) == 1 and lines[0].endswith("INFO    agent.t: hello")
