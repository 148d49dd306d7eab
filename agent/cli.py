"""The `edge-agent` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from agent.config import AgentConfig, ConfigError, SourceConfig, default_config, load_config, source_id_for
from agent.logs import setup_logging
from agent.tools.bench import add_bench_parser
from agent.tools.model_commands import add_model_parsers
from agent.tools.platform_commands import add_platform_parsers
from detectors import ModelError
from webauth.__main__ import main as web_password

if TYPE_CHECKING:
    from cityplatform.config import ReceiverConfig

log = logging.getLogger(__name__)

EPILOG = """\
examples:
  edge-agent run                          the built-in demo: sample clip, bundled model, ./edge-agent-data
  edge-agent run -c configs/fixed-cameras.yaml
  edge-agent process flight.mp4 --telemetry flight.SRT --kind drone -c configs/drone-vendors.yaml
  edge-agent process --kind fixed --keyframes-only cam1/*.mp4    several files at once, one per core
  edge-agent check-config configs/vehicle-4g.yaml
  edge-agent verify edge-agent-data/outbox
  edge-agent receive --check -c configs/receiver.yaml              the platform side's configuration
  edge-agent receive -c configs/receiver.yaml --enrol car-1 --key car-1.pem   trust that box's key
  edge-agent eval --scenario configs/scenarios/two-passes.yaml   cases raised vs expected (needs ../shared)
  edge-agent web-password                the hash for web.password_hash (the box's page)
  edge-agent bench --streams 12 --seconds 300                     do 12 cameras keep up on this box?
"""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.log_format)
    try:
        return args.func(args)
    except (ConfigError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="Turns city camera and drone video into signed, geotagged candidate cases "
        "(street vending, garbage piles, overflowing bins, cooking fumes).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format", choices=["text", "json"], default="text", help="json: one JSON object per line (log shippers)"
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the agent on every configured source until stopped (SIGTERM/Ctrl-C); SIGHUP reloads -c",
        description="Run every source in the configuration. Cameras run until SIGTERM or Ctrl-C; files end on "
        "their own. SIGHUP reloads the -c file without dropping a case (README: Reloading). Without -c, runs the "
        "built-in demo on the bundled sample clip and writes to ./edge-agent-data.",
    )
    run.add_argument("-c", "--config", type=Path, help="configuration YAML (default: the built-in demo)")
    run.set_defaults(func=_cmd_run)

    process = sub.add_parser(
        "process",
        help="process recorded videos as fast as the machine allows (several at once on several cores)",
        description="Process recorded footage (drone, body cam, vehicle) with a progress bar. Detector, rules and "
        "uploader come from -c (default: the built-in demo configuration); the sources are the given videos. "
        "Several videos run on --workers processes at once, each with the cases a run of it alone gives.",
    )
    process.add_argument("video", type=Path, nargs="+", help="MP4, MOV, MKV, MPEG-TS or AVI file(s)")
    process.add_argument(
        "--telemetry",
        type=Path,
        help="positions: DJI .SRT, NMEA .nmea, GPX, MISB KLV (.klv, or the .ts itself); one video only",
    )
    process.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="several videos: how many are processed at once, each in a worker process (default: the cores, "
        "%(default)s here)",
    )
    process.add_argument(
        "-c",
        "--config",
        type=Path,
        help="configuration YAML: detector, cases, evidence, uploader; sources, if any, are ignored",
    )
    process.add_argument("--kind", default="drone", choices=["vehicle", "fixed", "drone", "bodycam"])
    process.add_argument("--sample-fps", type=float, default=None, help="frames per second to analyse")
    process.add_argument(
        "--start-time",
        help="when recording began, e.g. 2026-11-20T10:30:00+08:00, when the file's own time is "
        "missing or wrong (it must line up with a separate NMEA log)",
    )
    process.add_argument(
        "--keyframes-only", action="store_true", help="decode keyframes only: far faster when sampling is sparse"
    )
    process.set_defaults(func=_cmd_process)

    check = sub.add_parser(
        "check-config",
        help="validate a configuration file and exit non-zero on any error",
        description="Validate a configuration without a network: every wrong key, type or value is listed with "
        "its path, URLs and ports are checked and the model is loaded; a password written in the file is warned of.",
    )
    check.add_argument("config", type=Path)
    check.set_defaults(func=_cmd_check_config)

    verify = sub.add_parser(
        "verify",
        help="check the signatures and evidence hashes of cases",
        description="Check a case folder or a whole outbox: every case's Ed25519 signature and every evidence "
        "file's sha256. Names each file that fails. Exit 0 only when everything holds.",
    )
    verify.add_argument("path", type=Path, help="a case folder (with case.json), an outbox or a state folder")
    verify.add_argument("--key", type=Path, help="public key PEM (default: keys/ of the state folder)")
    verify.add_argument(
        "--print-key",
        action="store_true",
        help="print the public key found for PATH (give it to the platform) and exit",
    )
    verify.set_defaults(func=_cmd_verify)

    receive = sub.add_parser(
        "receive",
        help="the platform side: store and acknowledge what agents send (reference receiver)",
        description="Subscribe to every agent under the topic prefix, check each case's schema and signature "
        "and each evidence file's sha256, store them once (SQLite in STORE_DIR, or the postgres section's shared "
        "PostgreSQL + PostGIS store; files in STORE_DIR) and acknowledge them. "
        "Several receivers with the same share_group split the load (MQTT 5 shared subscription). Only agents "
        "enrolled with --enrol are trusted; --check validates the file.",
    )
    receive.add_argument("-c", "--config", type=Path, required=True, help="receiver YAML (see configs/receiver.yaml)")
    receive.add_argument("--check", action="store_true", help="validate the receiver YAML and exit")
    receive.add_argument(
        "--enrol", metavar="AGENT", help="trust AGENT's public key (give it with --key) in the store, then exit"
    )
    receive.add_argument("--revoke", metavar="AGENT", help="stop trusting AGENT's enrolled key, then exit")
    receive.add_argument(
        "--key", type=Path, help="with --enrol: the PEM from `edge-agent verify --print-key` on the box"
    )
    receive.add_argument("--replace", action="store_true", help="with --enrol: replace a key enrolled before")
    receive.set_defaults(func=_cmd_receive)

    password = sub.add_parser(
        "web-password",
        help="print the password hash for web.password_hash (reads the password twice, or once from a pipe)",
        description="Make the scrypt hash the box's page checks logins against; the configuration holds only it.",
    )
    password.set_defaults(func=lambda args: web_password())

    add_bench_parser(sub)

    add_model_parsers(sub)
    add_platform_parsers(sub)
    return parser


def _load(path: Path | None) -> AgentConfig:
    return load_config(path) if path else default_config()


def _cmd_run(args: argparse.Namespace) -> int:
    from agent.runner import print_summary, run_agent

    config = _load(args.config)
    result = run_agent(config, config_path=args.config)
    print_summary(result)
    return 1 if any(s.problem for s in result.summaries) else 0


def _cmd_process(args: argparse.Namespace) -> int:
    from agent.progress import BatchProgress, progress_bars
    from agent.runner import print_summary, run_agent, run_batch

    base = load_config(args.config, sources_given=True) if args.config else default_config()
    videos: list[Path] = args.video
    if args.workers < 1:
        raise ConfigError(f"process --workers {args.workers}: give at least 1")
    if len(videos) > 1 and args.telemetry:
        raise ConfigError("process --telemetry goes with one video; process several videos one command each")
    sources = [_file_source(video, args, base) for video in videos]
    ids = [source.id for source in sources]
    if twice := sorted({i for i in ids if ids.count(i) > 1}):
        raise ConfigError(f"process: videos named alike give the same source id {twice}; rename or run them apart")
    if len(sources) == 1:
        config = base.model_copy(update={"sources": sources, "inbox": None})
        with progress_bars() as factory:
            result = run_agent(config, on_frame_factory=factory)
    else:
        config = base.model_copy(update={"sources": [], "inbox": None})
        progress = BatchProgress(ids)
        try:
            result = run_batch(config, sources, args.workers, progress.update)
        finally:
            progress.close()
    print_summary(result)
    return 1 if any(s.problem for s in result.summaries) else 0


def _file_source(video: Path, args: argparse.Namespace, base: AgentConfig) -> SourceConfig:
    """The source `process` makes of one recorded video and its flags."""
    if not video.is_file():
        raise ConfigError(f"{video}: file not found")
    try:
        return SourceConfig(
            id=source_id_for(video),
            kind=args.kind,
            url=str(video.resolve()),
            telemetry=args.telemetry.resolve() if args.telemetry else None,
            sample_fps=args.sample_fps or (base.sources[0].sample_fps if base.sources else 2.0),
            keyframes_only=args.keyframes_only,
            start_time=args.start_time,
        )
    except ValidationError as exc:
        raise ConfigError(f"process: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None


def _cmd_check_config(args: argparse.Namespace) -> int:
    from agent.updates.check import check_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        if _is_receiver_config(args.config):
            raise ConfigError(
                f"{exc}\n{args.config} is a receiver configuration: check it with "
                f"`edge-agent receive --check -c {args.config}`"
            ) from None
        raise
    check_config(config, str(args.config))
    kinds = ", ".join(f"{s.id} ({s.kind})" for s in config.sources)
    upload = "MQTT " + config.uploader.mqtt.host if config.uploader.mqtt else "local outbox only"
    print(f"{args.config}: OK: agent {config.agent_id}, {len(config.sources)} source(s): {kinds}; {upload}")
    return 0


def _is_receiver_config(path: Path) -> bool:
    """A file with the receiver's own keys (store_dir, share_group) and no sources."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "sources" not in data and bool({"store_dir", "share_group"} & data.keys())


def _cmd_verify(args: argparse.Namespace) -> int:
    from agent.evidence.verify import find_key, verify_path

    if args.print_key:
        key = args.key or find_key(args.path)
        if key is None:
            raise ConfigError(f"{args.path}: no keys/agent_ed25519.pub.pem here or above; run the agent once first")
        print(key.read_text(), end="")
        return 0
    problems, checked = verify_path(args.path, args.key)
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"{checked} case(s) checked, {len(problems)} problem(s)")
    return 1 if problems or not checked else 0


def _enrol_or_revoke(config: ReceiverConfig, args: argparse.Namespace) -> int:
    """`receive --enrol AGENT --key PEM` or `receive --revoke AGENT`: change the store's trusted keys."""
    from cityplatform.keys import enrol, revoke
    from cityplatform.receiver import open_store

    what = "--enrol" if args.enrol is not None else "--revoke"
    if args.enrol is not None and args.key is None:
        raise ConfigError("receive --enrol AGENT needs --key PEM (the box's `edge-agent verify --print-key`)")
    try:
        config.store_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(config)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"receive {what}: {exc}") from None
    try:
        print(revoke(store, args.revoke) if args.enrol is None else enrol(store, args.enrol, args.key, args.replace))
    except ValueError as exc:
        raise ConfigError(f"receive {what}: {exc}") from None
    finally:
        store.close()
    return 0


def _cmd_receive(args: argparse.Namespace) -> int:
    import signal
    import threading

    from agent.config import load_receiver_config
    from cityplatform.receiver import Receiver

    config = load_receiver_config(args.config)
    if args.enrol is not None or args.revoke is not None:
        return _enrol_or_revoke(config, args)
    if args.check:
        tofu = "; trust_first_key is ON (lab only)" if config.trust_first_key else ""
        if config.postgres is not None:
            tofu = (
                f"; shared store postgres {config.postgres.host}:{config.postgres.port}/{config.postgres.dbname}{tofu}"
            )
        print(
            f"{args.config}: OK: receiver {config.client_id} for {config.mqtt.host}:{config.mqtt.port}, "
            f"store {config.store_dir}, enrolled keys in the store (key files imported from "
            f"{config.trusted_keys_dir}){tofu}"
        )
        return 0
    try:
        receiver = Receiver(config)
    except OSError as exc:
        raise ConfigError(
            f"store_dir {config.store_dir}: cannot use it ({exc.strerror}); give a writable folder"
        ) from None
    except ValueError as exc:  # the postgres store: cannot connect, or a bad grid layer
        raise ConfigError(str(exc)) from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    receiver.start()
    log.info("receiver: storing into %s; stop with Ctrl-C or SIGTERM", receiver.store)
    stop.wait()
    receiver.stop()
    print(
        f"{receiver.stored} case(s) stored, {receiver.duplicates} duplicate(s), {receiver.rejected} rejected, "
        f"{receiver.dropped} unusable message(s) dropped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
