"""`edge-agent train`, `eval` and `export`: the model team's commands, registered on the command line
like `bench` (moved out of agent/cli.py, which they took past 400 lines). Each imports its tool only
when it runs: the box has no ultralytics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.config import ConfigError, default_config, load_config


def add_model_parsers(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train",
        help="train a YOLO detector on a YOLO-layout dataset (needs the train extra)",
        description="Train on DATA (images/ and labels/ in YOLO format). A held-out split by source is made "
        "as symlinks under --out (the dataset stays read-only); training builds from a model YAML, no hub. "
        "Needs: pip install -e '.[train]'.",
    )
    train.add_argument(
        "--data",
        type=Path,
        required=True,
        help="dataset folder with images/ and labels/, or with train/valid/test folders that hold them (pooled, "
        "then split again by source); or a data.yaml already split (edge-agent platform-training-set)",
    )
    train.add_argument("--classes", help="class names in id order, comma-separated (a data.yaml names its own)")
    train.add_argument("--out", type=Path, default=Path("runs"), help="split, logs and weights go here")
    train.add_argument("--model", default="yolov8n.yaml", help="model YAML (from scratch) or local .pt to fine-tune")
    train.add_argument("--imgsz", type=int, default=320)
    train.add_argument("--epochs", type=int, default=100)
    train.add_argument("--hours", type=float, default=None, help="stop after this long (fits the schedule to it)")
    train.add_argument("--val-fraction", type=float, default=0.15)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--batch", type=int, default=16)
    train.add_argument(
        "--negatives",
        type=Path,
        help="folder of images showing none of the classes (fog, steam, grey walls, empty streets), "
        "added to training as background",
    )
    train.add_argument(
        "--balance",
        default="",
        help="classes, comma-separated, whose training images are shown twice per epoch (class-balanced sampling "
        "for a class the dataset has few of), e.g. garbage,overflow",
    )
    train.add_argument("--device", default="cpu", help="cpu, or a CUDA device index such as 0")
    train.set_defaults(func=_cmd_train)

    evaluate = sub.add_parser(
        "eval",
        help="measure a model on held-out labelled images (precision, recall, mAP) through onnxruntime",
        description="Evaluate an ONNX model on labelled images it never trained on, through the agent's own "
        "onnxruntime path: per-class precision and recall at the model's thresholds (or --conf), "
        "mAP@0.5 and mAP@0.5:0.95, a confusion "
        "matrix and ms per image. --negatives counts detections on footage without targets. --scenario "
        "builds a labelled video and track and runs the whole agent on it: cases raised against cases the "
        "labels call for, event-level precision and recall.",
    )
    evaluate.add_argument(
        "--model", type=Path, help="ONNX model (or builtin:garbage); with --scenario, default: the config's"
    )
    evaluate.add_argument("--data", type=Path, help="data.yaml (its val split) or a folder with images/ and labels/")
    evaluate.add_argument("--negatives", type=Path, help="a video without targets: detections per 1000 frames")
    evaluate.add_argument(
        "--conf",
        type=float,
        default=None,
        help="one operating threshold for P, R and confusion in every class; default: the model's per-class "
        "thresholds (edge-agent calibrate), 0.30 for a class without one",
    )
    evaluate.add_argument("--threads", type=int, default=1)
    evaluate.add_argument(
        "--veto-with",
        type=Path,
        help="a general model (builtin:general) whose cars, people, bicycles, motorcycles and benches veto the "
        "boxes they mostly cover, at --conf (0.30 without; detectors/vetoes.py): the veto's effect on P and R",
    )
    evaluate.add_argument(
        "--scenario", type=Path, help="a scenario file (see configs/scenarios/two-passes.yaml): event-level P and R"
    )
    evaluate.add_argument("-c", "--config", type=Path, help="with --scenario: rules and detector (default: built-in)")
    evaluate.add_argument("--out", type=Path, help="with --scenario: keep the video, track and outbox here")
    evaluate.add_argument("--json", type=Path, help="also write the results here")
    evaluate.add_argument(
        "--no-crop-check",
        action="store_true",
        help="leave out the crop check the model names (edge-agent train-crop-check): what the check adds",
    )
    evaluate.set_defaults(func=_cmd_eval)

    crops = sub.add_parser(
        "train-crop-check",
        help="train the classifier that takes a second look at one class's boxes (needs the train extra)",
        description="Crops of a split's TRAINING side (made by edge-agent train): the labelled boxes of --checked "
        "(kept), of --look-alikes (dropped) and, with --mistakes-of, that model's --checked boxes that match no "
        "label (dropped); trains a YOLOv8n classifier on them, exports it to ONNX and, with --attach, writes a "
        "copy of a detection model whose metadata names the check, which the agent then runs by default.",
        epilog="example: edge-agent train-crop-check --data runs/split/data.yaml --mistakes-of "
        "models/garbage-yolov8n-int8.onnx --out runs/crop-check --attach models/garbage-yolov8n-int8.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    crops.add_argument("--data", type=Path, required=True, help="the split's data.yaml (its train side is used)")
    crops.add_argument("--out", type=Path, default=Path("runs/crop-check"), help="crops, logs, weights, ONNX")
    crops.add_argument("--checked", default="overflow", help="the detection class whose boxes are checked")
    crops.add_argument("--look-alikes", default="garbage_bin", help="classes, comma-separated, that are not it")
    crops.add_argument("--mistakes-of", type=Path, help="an ONNX detector whose unlabelled boxes become negatives")
    crops.add_argument("--imgsz", type=int, default=96)
    crops.add_argument("--epochs", type=int, default=12)
    crops.add_argument(
        "--weight", type=float, default=0.7, help="with --attach: the detector score's share of the fused score"
    )
    crops.add_argument("--attach", type=Path, metavar="DETECTOR.onnx", help="name the check in a copy of this model")
    crops.set_defaults(func=_cmd_train_crop_check)

    calibrate = sub.add_parser(
        "calibrate",
        help="per-class operating thresholds for a target precision on held-out images, into the model",
        description="Per class, the lowest score whose precision on DATA's labelled images reaches --precision, "
        "with a 2-fold cross-check by source block (chosen on half A, measured on half B, and the reverse). "
        "--write stores them in a copy of the model's metadata, where the agent reads them by default "
        "(detector.thresholds in the configuration overrides them).",
    )
    calibrate.add_argument("model", type=Path, help="ONNX model (fp32 or int8)")
    calibrate.add_argument("--data", type=Path, required=True, help="data.yaml (its val split) or images/ + labels/")
    calibrate.add_argument(
        "--precision",
        default="0.90",
        help="target precision: one for every class (0.90) or per class (overflow=0.90,garbage=0.75,0.85: the "
        "bare number for the classes not named)",
    )
    calibrate.add_argument("--write", type=Path, metavar="OUT.onnx", help="write the model with its thresholds here")
    calibrate.add_argument("--threads", type=int, default=1)
    calibrate.set_defaults(func=_cmd_calibrate)

    export = sub.add_parser(
        "export",
        help="export trained weights to the ONNX model the agent runs (needs the train extra)",
        description="Export ultralytics .pt weights to a simplified ONNX model with a fixed, rectangular input "
        "(HEIGHTxWIDTH; 16:9-ish inputs such as 192x320 or 384x640 cost far less than square ones).",
    )
    export.add_argument("weights", type=Path)
    export.add_argument("--imgsz", default="192x320", help="HEIGHTxWIDTH, multiples of 32")
    export.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    export.add_argument(
        "--int8",
        type=Path,
        metavar="CALIBRATION_IMAGES",
        help="also write a static int8 (QDQ) model, calibrated on these images, beside --out",
    )
    export.set_defaults(func=_cmd_export)


def _cmd_train(args: argparse.Namespace) -> int:
    from agent.tools.training import prepared_split, split_by_source, train

    try:
        if args.data.suffix in (".yaml", ".yml"):
            if args.balance:
                raise ValueError("--balance applies to a dataset folder, which train splits; a data.yaml is split")
            split = prepared_split(args.data, args.out)
        elif args.classes is None:
            raise FileNotFoundError("--classes: give the class names in id order (only a data.yaml names its own)")
        else:
            split = split_by_source(
                args.data,
                args.classes.split(","),
                args.out / "split",
                args.val_fraction,
                negatives=args.negatives,
                balance=tuple(name for name in args.balance.split(",") if name),
            )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"split by source: {split.train_images} training, {split.val_images} held-out images ({split.data_yaml})")
    if split.reviewed:
        print("reviewed platform cases in this dataset: " + ", ".join(f"{k} {v}" for k, v in split.reviewed.items()))
    best = train(
        split.data_yaml,
        args.out,
        args.model,
        args.imgsz,
        args.epochs,
        args.hours,
        args.seed,
        batch=args.batch,
        device=args.device,
    )
    print(f"best weights: {best}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from agent.tools import evaluate as ev

    model = _model_path(args.model)
    veto_with = _model_path(args.veto_with)
    if not args.data and not args.negatives and not args.scenario:
        raise ConfigError("eval: give --data (labelled images), --negatives (a video without targets) or --scenario")
    if (args.data or args.negatives) and args.model is None:
        raise ConfigError("eval: --data and --negatives need --model (an ONNX file or builtin:garbage)")
    results: dict = {}
    if args.scenario:
        results["events"] = _eval_scenario(args, model)
    if args.data:
        report = ev.evaluate(model, args.data, args.conf, args.threads, veto_with, not args.no_crop_check)
        ev.print_report(report)
        results["held_out"] = report
    if args.negatives:
        frames, flagged, per_class = ev.false_positives_per_1000(
            model, args.negatives, args.conf, args.threads, veto_with, not args.no_crop_check
        )
        per_1000 = 1000 * sum(per_class.values()) / max(frames, 1)
        at = "the model's thresholds (0.30 where it has none)" if args.conf is None else f"conf {args.conf}"
        print(
            f"\n{args.negatives.name}: {frames} frames, {flagged} with a box at {at}; "
            f"{per_1000:.1f} detections per 1000 frames {per_class}"
        )
        results["negatives"] = {
            "video": str(args.negatives),
            "frames": frames,
            "frames_with_box": flagged,
            "per_class": per_class,
            "per_1000_frames": per_1000,
        }
    if args.json:
        import json

        if "held_out" in results:
            results["held_out"] = json.loads(ev.report_json(results["held_out"]))
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _cmd_train_crop_check(args: argparse.Namespace) -> int:
    from agent.tools import crop_check_training as cc

    classes = cc.CropClasses(args.checked, tuple(n for n in args.look_alikes.split(",") if n))
    try:
        counts = cc.crop_dataset(args.data, args.out / "crops", classes, _model_path(args.mistakes_of))
    except (OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("crops (side, class, origin): " + ", ".join(f"{'/'.join(k)} {v}" for k, v in sorted(counts.items())))
    best = cc.train_classifier(args.out / "crops", args.out, args.imgsz, args.epochs)
    onnx_path = cc.export_classifier(best, args.imgsz, args.out / f"{args.checked}-check.onnx")
    print(f"wrote {onnx_path}")
    if args.attach:
        detection_model = _model_path(args.attach)  # builtin:garbage names a file
        target = args.out / detection_model.name
        cc.attach(detection_model, onnx_path, classes, args.weight, target)
        print(f"wrote {target}: it names {onnx_path.name}; ship the two side by side, and calibrate it anew")
    return 0


def _model_path(model: Path | None) -> Path | None:
    """A model path as given, or the bundled file of a `builtin:` name (ConfigError naming the known ones)."""
    from agent.config.resources import builtin, builtin_names

    if model is None or not str(model).startswith("builtin:"):
        return model
    found = builtin(str(model).removeprefix("builtin:"))
    if found is None:
        raise ConfigError(f"eval: unknown model {model}; the bundled ones are {builtin_names()}")
    return found


def _eval_scenario(args: argparse.Namespace, model: Path | None) -> dict:
    import tempfile

    from agent.tools.scenario_eval import evaluate_file, print_events

    base = load_config(args.config) if args.config else default_config()
    if model is not None and base.detector is None:
        raise ConfigError(f"{args.config}: --model replaces a `detector:` file's model; give models in `detectors:`")
    if model is not None:
        base = base.model_copy(update={"detector": base.detector.model_copy(update={"model": model})})
    with tempfile.TemporaryDirectory(prefix="scenario-") as scratch:
        try:
            report, scenario = evaluate_file(args.scenario, base, args.out or Path(scratch))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    print_events(report, scenario)
    return {"scenario": str(args.scenario), **report.counts()}


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from agent.tools.calibrate import calibrate, print_calibration, write_thresholds

    report = calibrate(args.model, args.data, _precision_targets(args.precision), args.threads)
    print_calibration(report)
    if args.write:
        print(f"\nwrote {write_thresholds(args.model, args.write, report.thresholds)}: {report.thresholds}")
    return 0


def _precision_targets(text: str) -> dict[str, float]:
    """`0.9` or `overflow=0.9,garbage=0.75[,0.85]` -> {class: target, "": default}."""
    targets: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.rpartition("=")
        try:
            target = float(value)
        except ValueError:
            target = -1.0
        if not 0 < target < 1:
            raise ConfigError(
                f"calibrate --precision {text}: {part!r} is not a fraction between 0 and 1; "
                "give e.g. 0.90 or overflow=0.90,garbage=0.75"
            )
        targets[name.strip()] = target
    targets.setdefault("", 0.90)
    return targets


def _cmd_export(args: argparse.Namespace) -> int:
    from agent.tools.training import export_onnx

    try:
        height, width = (int(v) for v in args.imgsz.lower().split("x"))
    except ValueError:
        print(f"error: --imgsz {args.imgsz!r}: give HEIGHTxWIDTH, for example 192x320", file=sys.stderr)
        return 2
    print(f"wrote {export_onnx(args.weights, (height, width), args.out)}")
    if args.int8:
        from agent.tools.training import quantize_int8

        int8_path = args.out.with_name(args.out.stem + "-int8.onnx")
        print(f"wrote {quantize_int8(args.out, args.int8, int8_path)}")
    return 0
