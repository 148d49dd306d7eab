"""`edge-agent platform-export`, `platform-review`, `platform-review-page`, `platform-training-set` and
`platform-loadtest`: the platform team's commands over a receiver YAML with a postgres section
(registered like `bench`; psycopg is imported only when they run)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from agent.config import ConfigError, load_receiver_config


def add_platform_parsers(sub: argparse._SubParsersAction) -> None:
    export = _platform_parser(
        sub,
        "platform-export",
        help="write the platform cases of each street office as JSON (for the city's case system)",
        description="One file per street office, street-<name>.json, with every platform case's grid cell, "
        "case code, due time, reports and evidence; manual-dispatch.json for the cases without a grid cell.",
    )
    export.add_argument("--out", type=Path, required=True, help="folder for the JSON files")
    export.add_argument("--street", help="only this street office (街道), as the grid layer names it")
    export.set_defaults(func=_cmd_export)

    review = _platform_parser(
        sub,
        "platform-review",
        help="record an inspector's review of a platform case: confirm, reject with a reason, or correct the type",
        description="One decision per call (the review page, platform-review-page, writes the same rows); "
        "the latest decision of a case counts. "
        "Reasons: not_a_problem (a hard negative for training), duplicate, wrong_type, outside_rules.",
    )
    review.add_argument("--case", type=int, required=True, help="the platform case id (platform-export shows it)")
    decision = review.add_mutually_exclusive_group(required=True)
    decision.add_argument("--confirm", action="store_true", help="a real problem of its type")
    decision.add_argument("--reject", metavar="REASON", help="not_a_problem | duplicate | wrong_type | outside_rules")
    decision.add_argument("--correct", metavar="TYPE", help="a real problem of this other type")
    review.add_argument("--reviewer", required=True, help="the inspector's name or id, kept with the decision")
    review.set_defaults(func=_cmd_review)

    page = _platform_parser(
        sub,
        "platform-review-page",
        help="serve the inspectors' review page (the receiver YAML's review section) until Ctrl-C",
        description="A queue of new platform cases on a map of the grid, with their reports and evidence; "
        "confirm, reject with a reason or correct the type (keyboard: j/k, c, r, t), as platform-review does.",
        needs="postgres and review sections",
    )
    page.set_defaults(func=_cmd_review_page)

    dataset = _platform_parser(
        sub,
        "platform-training-set",
        help="build a YOLO dataset from reviewed platform cases, for edge-agent train --data OUT/data.yaml",
        description="Confirmed (and corrected) cases' crops with their boxes as labels, cases rejected as "
        "not_a_problem as hard negatives, split by agent, source and day; data.yaml and reviewed.json count them.",
    )
    dataset.add_argument("--out", type=Path, required=True, help="a new (or empty) folder for the dataset")
    dataset.add_argument("--classes", required=True, help="the model's class names in id order, comma-separated")
    dataset.add_argument(
        "--class-map", default="", help="case type=class name, comma-separated (default: each type is its own class)"
    )
    dataset.add_argument(
        "--val-fraction", type=float, default=0.2, help="share of (agent, source, day) groups held out"
    )
    dataset.set_defaults(func=_cmd_training_set)

    load = _platform_parser(
        sub,
        "platform-loadtest",
        help="simulated agents against 1..n receivers sharing the PostgreSQL store: a table",
        description="Uses the receiver YAML's broker and database (use a scratch database: it adds cases). "
        "Prints cases stored per second, p50/p95 publish -> stored ack, lost and duplicated per receiver count.",
    )
    load.add_argument("--receivers", type=int, nargs="+", default=[1, 3], help="receiver counts to run")
    load.add_argument("--agents", type=int, default=200)
    load.add_argument("--cases-per-minute", type=float, default=3.0, help="per agent")
    load.add_argument("--duration", type=float, default=60.0, help="seconds of sending per run")
    load.add_argument("--snapshot-bytes", type=int, default=40_000)
    load.add_argument("--resend", type=float, default=0.1, help="share of cases an agent sends twice")
    load.set_defaults(func=_cmd_loadtest)


def _platform_parser(
    sub: argparse._SubParsersAction, name: str, needs: str = "a postgres section", **kwargs: str
) -> argparse.ArgumentParser:
    """A platform command's parser, with the receiver YAML every one of them reads."""
    parser = sub.add_parser(name, **kwargs)
    parser.add_argument("-c", "--config", type=Path, required=True, help=f"receiver YAML with {needs}")
    return parser


def _postgres_config(path: Path):
    config = load_receiver_config(path)
    if config.postgres is None:
        raise ConfigError(f"{path}: no postgres section; platform commands need the shared PostgreSQL store")
    return config


def _store(config):
    from cityplatform.store_postgres import PostgresStore

    try:
        return PostgresStore(config.postgres, config.platform)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _cmd_review(args: argparse.Namespace) -> int:
    from cityplatform.reviews import Review, review_case

    decision = "confirm" if args.confirm else "reject" if args.reject else "correct"
    review = Review(args.case, decision, args.reject, args.correct, args.reviewer)
    store = _store(_postgres_config(args.config))
    try:
        review_id = review_case(store, review)
    except ValueError as exc:
        raise ConfigError(f"platform-review: {exc}") from None
    finally:
        store.close()
    print(f"review {review_id}: platform case {args.case} {decision} {args.reject or args.correct or ''}".rstrip())
    return 0


def _cmd_review_page(args: argparse.Namespace) -> int:
    config = _postgres_config(args.config)
    if config.review is None:
        raise ConfigError(f"{args.config}: no review section (user, password_hash, ...): see docs/platform.md")
    try:
        from cityplatform.review.server import ReviewServer
    except ImportError as exc:
        raise ConfigError(f"the review page needs {exc.name}: pip install 'edge-agent[web,platform]'") from None
    try:
        server = ReviewServer(config)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    server.serve_forever()
    return 0


def _cmd_training_set(args: argparse.Namespace) -> int:
    from cityplatform.training_set import build_training_set

    classes = [name.strip() for name in args.classes.split(",") if name.strip()]
    pairs = [item.split("=", 1) for item in args.class_map.split(",") if item.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise ConfigError(f"--class-map {args.class_map!r}: give type=class pairs, e.g. garbage_pile=garbage")
    class_map = {t.strip(): c.strip() for t, c in pairs} or {name: name for name in classes}
    config = _postgres_config(args.config)
    store = _store(config)
    try:
        with store.direct() as tx:
            built = build_training_set(tx.run, config.store_dir, args.out, classes, class_map, args.val_fraction)
    except ValueError as exc:
        raise ConfigError(f"platform-training-set: {exc}") from None
    finally:
        store.close()
    print(f"{built.data_yaml}: " + ", ".join(f"{k} {v}" for k, v in built.summary().items()))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from cityplatform.export import export_by_street

    config = _postgres_config(args.config)
    store = _store(config)
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
