"""A real RTSP camera stand-in for tests: gst-rtsp-server serving a live H.264 test pattern.

Run it with Debian's /usr/bin/python3 (it has `gi`; the venv does not):

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --fps 15 --size 640x360

It serves rtsp://127.0.0.1:PORT/live (or `--path`) over TCP and UDP, prints `READY PORT` once it listens and
runs until killed. The pattern is live (paced by the clock) and x264-encoded with a keyframe every
second and SPS/PPS repeated, so a client that joins or rejoins at any time decodes within a second.
The tests kill it, restart it on the same port and SIGSTOP/SIGCONT it to make faults. With `--image`
it shows that still picture (scaled to `--size`) instead of the moving ball: a scene whose objects stand
at known places, as a camera's main stream and substream show the same scene at two sizes.
"""

from __future__ import annotations

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def pipeline(fps: int, width: int, height: int, bframes: int = 0, image: str = "") -> str:
    """Baseline H.264 without B-frames, or with `bframes` B-frames (main profile, which allows them,
    and without zerolatency, which forbids them), as many real cameras send; `image`: a still picture."""
    if bframes:
        encoder = f"x264enc speed-preset=ultrafast key-int-max={fps} bframes={bframes} b-adapt=false"
        profile = "main"
    else:
        encoder = f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps}"
        profile = "baseline"
    scene = "videotestsrc is-live=true pattern=ball"
    if image:
        scene = f"filesrc location={image} ! decodebin ! imagefreeze is-live=true ! videoscale ! videoconvert"
    return (
        f"( {scene} ! video/x-raw,width={width},height={height},framerate={fps}/1 ! "
        f"videoconvert ! {encoder} ! video/x-h264,profile={profile} ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def file_pipeline(path: str) -> str:
    """A real recording (MP4 with H.264) sent as it is, paced by the server's clock, from its start for
    each client (with --per-client): footage with objects for the detectors, which a test pattern lacks."""
    return f"( filesrc location={path} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 binds a free port")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--bframes", type=int, default=0, help="B-frames between references (0: none)")
    parser.add_argument("--per-client", action="store_true", help="a pipeline per client instead of one shared")
    parser.add_argument("--path", default="/live", help="the mount point")
    parser.add_argument("--image", default="", help="serve this still picture instead of the moving ball")
    parser.add_argument("--file", help="serve this MP4 (H.264) instead of the test pattern")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    launch = pipeline(args.fps, width, height, args.bframes, args.image)
    factory.set_launch(file_pipeline(args.file) if args.file else launch)
    factory.set_shared(not args.per_client)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    print(f"READY {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
