"""Logging set-up: one line per event on stderr, with any password in a URL masked."""

from __future__ import annotations

import logging

from streams.video import mask_url


class MaskingFormatter(logging.Formatter):
    """Last line of defence: masks user:password@ in the whole formatted record, whoever logged it,
    tracebacks and exception texts included (a filter on the message alone never sees those)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_url(super().format(record))


def setup_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("libav").setLevel(logging.ERROR)
