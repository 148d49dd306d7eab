"""Rebuild samples/street-garbage.mp4 and its NMEA track from held-out dataset photos.

The clip is a slow pan over four photos of garbage-street-cn (CC BY 4.0) that the bundled model
never trained on (the validation side of `agent.tools.training.split_by_source`), one photo per 6 s,
as a patrol car passing four places 60 m apart. The NMEA track is synthetic: a car driving east
at 10 m/s along a street in Hangzhou. Needs ffmpeg on PATH and ../shared beside the checkout.

    python scripts/make_sample_clip.py ../shared/datasets/garbage-street-cn/train samples/
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from streams.nmea import sentence

PHOTOS = ["000768", "000796", "000728", "000752"]  # validation side of the split, see the docstring
FPS, SECONDS_PER_PHOTO, SIZE = 10, 6, (640, 480)
START = datetime(2026, 11, 20, 2, 30, 0, tzinfo=UTC)  # 10:30 Beijing time
ORIGIN = (30.27415, 120.15515)  # Hangzhou, Wulin Square area
SPEED_MPS = 10.0


def frames(dataset: Path):
    for stem in PHOTOS:
        image = cv2.imread(str(next((dataset / "images").glob(stem + "_*"))))
        image = cv2.resize(image, (640, 640))
        steps = FPS * SECONDS_PER_PHOTO
        for i in range(steps):
            t = i / (steps - 1)
            x, y = int(80 * t), int(110 + 110 * t)
            yield cv2.resize(image[y : y + 420, x : x + 560], SIZE, interpolation=cv2.INTER_AREA)


def nmea_track(seconds: int) -> str:
    lines = []
    for s in range(seconds + 1):
        moment = START + timedelta(seconds=s)
        lat = ORIGIN[0]
        lon = ORIGIN[1] + SPEED_MPS * s / (111320 * np.cos(np.radians(lat)))
        hms = moment.strftime("%H%M%S") + ".00"
        lat_s = f"{int(lat):02d}{(lat % 1) * 60:07.4f}"
        lon_s = f"{int(lon):03d}{(lon % 1) * 60:07.4f}"
        knots = SPEED_MPS / 0.514444
        for body in (
            f"GPGGA,{hms},{lat_s},N,{lon_s},E,1,09,0.9,12.0,M,7.0,M,,",
            f"GPRMC,{hms},A,{lat_s},N,{lon_s},E,{knots:.1f},90.0,{moment.strftime('%d%m%y')},,,A",
        ):
            lines.append(sentence(body))
    return "\n".join(lines) + "\n"


def main(dataset: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    clip = out_dir / "street-garbage.mp4"
    ffmpeg = subprocess.Popen(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "bgr24",
            "-s",
            f"{SIZE[0]}x{SIZE[1]}",
            "-r",
            str(FPS),
            "-i",
            "-",
            "-c:v",
            "libx264",
            "-preset",
            "slow",
            "-crf",
            "28",
            "-g",
            str(2 * FPS),
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            "-metadata",
            f"creation_time={START.isoformat().replace('+00:00', 'Z')}",
            str(clip),
        ],
        stdin=subprocess.PIPE,
    )
    for frame in frames(dataset):
        ffmpeg.stdin.write(frame.tobytes())
    ffmpeg.stdin.close()
    if ffmpeg.wait() != 0:
        sys.exit("ffmpeg failed")
    (out_dir / "street-garbage.nmea").write_text(nmea_track(len(PHOTOS) * SECONDS_PER_PHOTO))
    print(f"wrote {clip} ({clip.stat().st_size} bytes) and its .nmea track")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
