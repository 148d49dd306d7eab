"""systemd's notification protocol, without a dependency: one datagram to $NOTIFY_SOCKET.

Under `Type=notify` systemd waits for READY=1 before it counts the service as started, and with
`WatchdogSec=` it restarts the service when WATCHDOG=1 stops coming for that long. Without
NOTIFY_SOCKET (a terminal, Docker) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def sd_notify(message: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send `message` (e.g. "READY=1") to systemd; False when not run under a notify-aware manager."""
    path = environ.get("NOTIFY_SOCKET", "")
    if not path or path[0] not in "/@":
        return False
    address = "\0" + path[1:] if path.startswith("@") else path  # '@': Linux's abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:  # a gone manager must not take the agent down; the watchdog will say so
        log.warning("sd_notify: cannot send %s to %s: %s", message.split("=", 1)[0], path, exc.strerror or exc)
        return False
    return True


class Watchdog:
    """Sends WATCHDOG=1 at half the interval systemd asks for (WATCHDOG_USEC), from the loop that
    proves the agent alive; `tick()` is cheap to call as often as that loop turns."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.environ = environ
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        meant_for_us = not pid or pid == str(os.getpid())
        self.interval_s = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and meant_for_us else None
        self._last = float("-inf")

    def tick(self) -> None:
        if self.interval_s is None or time.monotonic() - self._last < self.interval_s:
            return
        self._last = time.monotonic()
        sd_notify("WATCHDOG=1", self.environ)
