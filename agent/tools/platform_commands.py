"""`edge-agent platform-export` and `platform-loadtest`: the platform team's commands over a receiver
YAML with a postgres section (registered like `bench`; psycopg is imported only when they run)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from agent.config import ConfigError, load_receiver_config


def add_platform_parsers(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser(
        "platform-export",
        help="write the platform cases of each street office as JSON (for the city's case system)",
        description="One file per street office, street-<name>.json, with every platform case's grid cell, "
        "case code, due time, reports and evidence; manual-dispatch.json for the cases without a grid cell.",
    )
    export.add_argument("-c", "--config", type=Path, required=True, help="receiver YAML with a postgres section")
    export.add_argument("--out", type=Path, required=True, help="folder for the JSON files")
    export.add_argument("--street", help="only this street office (街道), as the grid layer names it")
    export.set_defaults(func=_cmd_export)

    load = sub.add_parser(
        "platform-loadtest",
        help="simulated agents against 1..n receivers sharing the PostgreSQL store: a table",
        description="Uses the receiver YAML's broker and database (use a scratch database: it adds cases). "
        "Prints cases stored per second, p50/p95 publish -> stored ack, lost and duplicated per receiver count.",
    )
    load.add_argument("-c", "--config", type=Path, required=True, help="receiver YAML with a postgres section")
    load.add_argument("--receivers", type=int, nargs="+", default=[1, 3], help="receiver counts to run")
    load.add_argument("--agents", type=int, default=200)
    load.add_argument("--cases-per-minute", type=float, default=3.0, help="per agent")
    load.add_argument("--duration", type=float, default=60.0, help="seconds of sending per run")
    load.add_argument("--snapshot-bytes", type=int, default=40_000)
    load.add_argument("--resend", type=float, default=0.1, help="share of cases an agent sends twice")
    load.set_defaults(func=_cmd_loadtest)


def _postgres_config(path: Path):
    config = load_receiver_config(path)
    if config.postgres is None:
        raise ConfigError(f"{path}: no postgres section; platform commands need the shared PostgreSQL store")
    return config


def _cmd_export(args: argparse.Namespace) -> int:
    from cityplatform.export import export_by_street
    from cityplatform.store_postgres import PostgresStore

    config = _postgres_config(args.config)
    try:
        store = PostgresStore(config.postgres, config.platform)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        with store.direct() as tx:
            written = export_by_street(tx.run, args.out, args.street)
    finally:
        store.close()
    for path in written:
        print(path)
    print(f"{len(written)} file(s) written to {args.out}")
    return 0


def _cmd_loadtest(args: argparse.Namespace) -> int:
    from cityplatform.loadtest import HEADER, run_load

    config = _postgres_config(args.config)
    logging.getLogger("cityplatform").setLevel(logging.WARNING)  # not a line per case stored
    logging.getLogger("cityplatform.platform_cases").setLevel(logging.ERROR)  # nor per case without a grid
    print(HEADER, flush=True)
    failed = False
    for count in args.receivers:
        try:
            result = run_load(
                config, count, args.agents, args.cases_per_minute, args.duration, args.snapshot_bytes, args.resend
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        print(result.row(), flush=True)
        failed |= bool(result.lost or result.files_lost or result.duplicated)
    return 1 if failed else 0
