"""Where a case is: the best position the agent knows for the frame that shows it.

This is the camera's position (from telemetry, or configured for a fixed camera), not yet the
object's ground point; `method` and `accuracy_m` say so. Without any position the case has none:
a location is never invented.
"""

from __future__ import annotations

from agent.cases import Location
from agent.config import SourceConfig
from streams import Frame

GPS_DEFAULT_ACCURACY_M = 15.0  # a receiver that reports no accuracy, plus the camera's view distance


def locate(frame: Frame, source: SourceConfig) -> Location | None:
    if frame.fix is not None:
        accuracy = frame.fix.accuracy_m if frame.fix.accuracy_m is not None else GPS_DEFAULT_ACCURACY_M
        return Location(frame.fix.lat, frame.fix.lon, accuracy, f"camera_position:{frame.fix.source}")
    if source.position is not None:
        p = source.position
        return Location(p.lat, p.lon, p.accuracy_m, "camera_position:configured")
    return None
