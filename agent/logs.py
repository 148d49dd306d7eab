"""Logging set-up: one line per event on stderr (text, or JSON lines for a log shipper), with any
password in a URL masked, and the source id on every line logged from a source's own threads."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime

from streams.video import mask_url

SOURCE_THREADS = ("source:", "decode:", "record:")  # runner.py and streams/ name a source's threads "<role>:<id>"


class MaskingFormatter(logging.Formatter):
    """Last line of defence: masks user:password@ in the whole formatted record, whoever logged it,
    tracebacks and exception texts included (a filter on the message alone never sees those)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_url(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, source where known, exception.
    Masked like the text lines: every value goes through mask_url before it is written."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_url(record.getMessage()),
        }
        source = getattr(record, "source", None)
        if source:
            line["source"] = source
        if record.exc_info:
            line["exception"] = mask_url(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class SourceFilter(logging.Filter):
    """Sets `record.source` from the thread's name when a source's thread logs and the caller did not
    give one (`extra={"source": ...}`), so every line about a source carries its id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "source", None):
            name = threading.current_thread().name
            record.source = next((name[len(p) :] for p in SOURCE_THREADS if name.startswith(p)), "")
        return True


def setup_logging(verbose: bool = False, fmt: str = "text") -> None:
    """`fmt` "text" (for people) or "json" (JSON lines, for journald or a log shipper)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(SourceFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("libav").setLevel(logging.ERROR)
