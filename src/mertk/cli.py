"""The ``mertk`` command: thin sub-commands over importable functions.

Each sub-command parses its arguments, calls one function of the package and prints the result.
User-facing errors (:class:`~mertk.errors.MertkError`) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from .errors import MertkError, check_writable, frame_size

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code for usage errors is also 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"mertk: error: {message}\n")


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False, default=str))


# ----------------------------------------------------------------------------------------------
# sub-commands
# ----------------------------------------------------------------------------------------------


def _loader_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``allow_outside_root=True`` for ``--allow-outside-root``, refused for a dataset whose loader reads no csv paths."""
    import inspect

    from .errors import MertkError as _Err
    from .registry import DATASETS

    if not args.allow_outside_root:
        return {}
    if "allow_outside_root" not in inspect.signature(DATASETS.get(args.dataset)).parameters:
        readers = [n for n in DATASETS.names() if "allow_outside_root" in inspect.signature(DATASETS.get(n)).parameters]
        raise _Err(f"--allow-outside-root applies to the datasets read from a label csv ({', '.join(readers)}), not {args.dataset!r}")
    return {"allow_outside_root": True}


def cmd_info(args: argparse.Namespace) -> int:
    from .data.info import describe, format_info

    report = describe(args.dataset, args.root, annotation=args.annotation, official=args.official,
                      **_loader_kwargs(args))
    if args.json:
        _print_json(report)
    else:
        print(format_info(report))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from .synth import synthesize

    summary = synthesize(args.out, subjects=args.subjects, seed=args.seed, size=args.size,
                         long_videos=args.long, progress=not args.quiet)
    if args.json:
        _print_json(summary)
    else:
        print(f"wrote the synthetic benchmark to {summary['out']}")
        for name, n in summary["datasets"].items():
            print(f"  {name:16s} {n}")
        print(f"  ground truth: {summary['ground_truth']}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .models import describe_models

    rows = describe_models()
    if args.json:
        _print_json(rows)
    else:
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            note = "  [classical: fitted SVM weights]" if r["kind"] == "classical" else ""
            print(f"{r['name']:<{width}}  {r['params']:>10,d}  {str(tuple(r['input'])):<22} {r['paper']}{note}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from .data import open_dataset
    from .engine.recipe import default_cache_dir
    from .errors import MertkError as _Err
    from .preprocess.pipeline import apply_overrides, config_for_feature, config_for_model, prepare

    if (args.features is None) == (args.model is None):
        raise _Err("prepare: give exactly one of --features NAME or --model NAME")
    config = config_for_model(args.model) if args.model else config_for_feature(args.features)
    config = apply_overrides(config, args.set)
    cache = None if args.no_cache else check_writable(args.cache or default_cache_dir(), folder=True)
    loader = {**_loader_kwargs(args), **({"official": args.official} if args.official else {})}
    dataset = open_dataset(args.dataset, args.root, **loader)
    result = prepare(dataset, config, cache_dir=cache, workers=args.workers, progress=not (args.json or args.quiet))
    summary = result.summary()
    summary.update({"dataset": args.dataset, "root": str(args.root), "cache": None if cache is None else str(cache),
                    "loader_skipped": [s.as_dict() for s in dataset.skipped],
                    "loader_warnings": [w.as_dict() for w in getattr(dataset, "warnings", [])]})
    if args.json:
        _print_json(summary)
    else:
        print(f"{args.dataset}: prepared {summary['prepared']} {config.feature} features in {summary['seconds']} s "
              f"({result.hits} from the cache, {result.misses} computed) -> {summary['cache']}")
        if dataset.skipped:
            print(f"  {len(dataset.skipped)} clip(s) skipped by the loader (see `mertk info {args.dataset} {args.root}`)")
        for w in getattr(dataset, "warnings", []):
            print(f"  warning {w.item}: {w.problem} -> {w.fallback} ({w.source})")
        for item in result.skipped:
            print(f"  skipped {item.item}: {item.reason}")
    if not result.features:
        first = result.skipped[0].reason if result.skipped else "the dataset has no usable clip"
        raise _Err(f"prepare: nothing could be prepared ({first})")
    return 0


def cmd_flow(args: argparse.Namespace) -> int:
    import time

    import cv2
    import numpy as np

    from .errors import DataError
    from .preprocess.flow import get_flow_method
    from .preprocess.imageio import read_image

    if args.out is not None:
        check_writable(args.out, folder=False)
    images = []
    for path in (args.a, args.b):
        image = read_image(path, cv2.IMREAD_COLOR)
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if images[0].shape != images[1].shape:
        raise DataError(args.b, f"size {frame_size(*images[1].shape[:2])} differs from {args.a} "
                                f"({frame_size(*images[0].shape[:2])})")
    method = get_flow_method(args.method)
    start = time.perf_counter()
    flow = method(images[0], images[1])
    ms = (time.perf_counter() - start) * 1000
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.save(args.out, flow)
    summary = {"method": args.method, "shape": list(flow.shape), "ms": round(ms, 2),
               "mean_magnitude": float(magnitude.mean()), "max_magnitude": float(magnitude.max()),
               "mean_u": float(flow[..., 0].mean()), "mean_v": float(flow[..., 1].mean()),
               "out": None if args.out is None else str(args.out)}
    if args.json:
        _print_json(summary)
    else:
        print(f"{args.method}: {frame_size(*flow.shape[:2])} flow in {ms:.1f} ms; mean |flow| "
              f"{summary['mean_magnitude']:.3f} px, max {summary['max_magnitude']:.3f} px, mean (u, v) "
              f"({summary['mean_u']:.3f}, {summary['mean_v']:.3f})" + (f" -> {args.out}" if args.out else ""))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .engine.recipe import default_cache_dir
    from .engine.run import run_recipe

    check_writable(args.out or Path("runs"), folder=True)
    check_writable(args.cache or default_cache_dir(), folder=True)
    overrides = list(args.set)
    if args.official is not None:
        overrides.append(f"data.official={json.dumps(str(args.official.expanduser().resolve()))}")
    run_dir = run_recipe(args.recipe, data=args.data, out=args.out, overrides=overrides, cache_dir=args.cache,
                         progress=not (args.json or args.quiet), train_workers=args.workers,
                         ray_address=args.ray_address, select_grid=args.select_grid)
    from .report import write_report

    results = json.loads((run_dir / "results.json").read_text())
    report = write_report(run_dir)
    if args.json:
        _print_json({"run_dir": str(run_dir), **results["metrics"], "report": report["html"],
                     "checkpoint": results.get("checkpoint")})
    else:
        m = results["metrics"]
        print(f"{results['recipe']}: UF1 {m['uf1']:.4f}  UAR {m['uar']:.4f}  accuracy {m['accuracy']:.4f} "
              f"({m['n']} clips, {len(results['folds'])} folds)")
        print(f"run directory: {run_dir}")
        print(f"report: {report['html']}")
        if results.get("checkpoint"):
            print(f"model: {results['checkpoint']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .workflows.demo import demo

    summary = demo(args.out, quick=args.quick, progress=not (args.json or args.quiet))
    if args.json:
        _print_json(summary)
    else:
        print(f"demo ({summary['recipe']} on the synthetic MEGC 2019 composite, LOSO): UF1 {summary['uf1']:.4f}  "
              f"UAR {summary['uar']:.4f}  accuracy {summary['accuracy']:.4f} in {summary['seconds']:.0f} s")
        print(f"results: {summary['results']}")
        print(f"predictions: {summary['predictions']}")
        print(f"plots: {summary['confusion']}, {summary['training_curves']}")
        print(f"model: {summary['checkpoint']}")
        print(f"report: {summary['report']}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from .engine.metrics import format_metrics, metrics_command

    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    report = metrics_command(args.predictions, classes=classes)
    if args.json:
        _print_json(report)
    else:
        print(format_metrics(report))
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "info": (cmd_info, "describe a dataset copy: rows, clips, frames found, labels, skipped rows"),
    "synth": (cmd_synth, "write the synthetic benchmark in the native dataset layouts"),
    "models": (cmd_models, "list registered models with parameter counts"),
    "prepare": (cmd_prepare, "preprocess a dataset into cached features (faces, crops, apex, flow, encodings)"),
    "flow": (cmd_flow, "optical flow between two images"),
    "metrics": (cmd_metrics, "MEGC metrics (UF1, UAR, accuracy, per class, per dataset) of a predictions CSV"),
    "train": (cmd_train, "run a paper recipe (or a recipe file) into a run directory; resumes a killed run"),
    "demo": (cmd_demo, "the embedded end-to-end run: synthetic data -> LAENet recipe -> metrics and plots"),
}


# Sub-commands that live beside the code they drive: (module, add-parser function, handler, one-line help).
# A plugin module is imported only when its command runs, so `mertk --help` stays fast.
PLUGINS: dict[str, tuple[str, str, str, str]] = {
    "explain": ("mertk.explain.cli", "add_explain_parser", "cmd_explain",
                "saliency maps (original and improved, shcnn-miao-2019) of a trained model on clips or images"),
    "report": ("mertk.report", "add_report_parser", "cmd_report",
               "write report.html (self-contained) and report.md of a run directory"),
    "compare": ("mertk.report.compare", "add_compare_parser", "cmd_compare",
                "compare run directories side by side (UF1 / UAR / accuracy per dataset and overall)"),
    "predict": ("mertk.realtime.predict", "add_predict_parser", "cmd_predict",
                "run a trained checkpoint on your own video, frame folder or camera: face, spotting, recognition"),
    "bench": ("mertk.realtime.bench", "add_bench_parser", "cmd_bench",
              "latency of the inference path, stage by stage, beside OpenCV's TV-L1 in the same run"),
    "sweep": ("mertk.workflows.sweep", "add_sweep_parser", "cmd_sweep",
              "run every combination of a grid of recipe values over seeds (mean ± std over seeds per dataset)"),
    "export": ("mertk.deploy.onnx_export", "add_export_parser", "cmd_export",
               "export a checkpoint to ONNX (softmax probabilities, dynamic batch) and check parity with PyTorch"),
}


def _plugin_handler(name: str) -> Callable[[argparse.Namespace], int]:
    module, _, handler, _ = PLUGINS[name]
    return getattr(importlib.import_module(module), handler)


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (the first argument that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``mertk`` parser; the plugin ``command`` (if any) gets its full sub-parser, the others a stub
    carrying their help line (enough for ``mertk --help``)."""
    parser = _Parser(prog="mertk", description="Facial micro-expression recognition toolkit.")
    parser.add_argument("--version", action="version", version=f"mertk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("info", help=COMMANDS["info"][1], description=COMMANDS["info"][1])
    p.add_argument("dataset", help="dataset or composite name (see `mertk info --list`)")
    p.add_argument("root", type=Path, help="folder holding the dataset as shipped")
    p.add_argument("--annotation", type=Path, default=None, help="annotation file, if not found under ROOT")
    p.add_argument("--official", "--gt", type=Path, default=None, dest="official",
                   help="official clip list (e.g. MEGC 2019 combined_3class_gt.csv) defining a composite exactly")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="read label-csv paths that leave ROOT (image-folder, megc2019-features); refused by default")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("synth", help=COMMANDS["synth"][1], description=COMMANDS["synth"][1])
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--subjects", type=int, default=12, help="distinct synthetic subjects (default 12)")
    p.add_argument("--seed", type=int, default=0, help="random seed (output is deterministic per seed)")
    p.add_argument("--size", choices=("small", "medium", "large"), default="small",
                   help="clips per subject and frames per clip (default small: the demo's size)")
    p.add_argument("--long", type=int, default=0, metavar="N",
                   help="also write N long videos with known micro/macro intervals (SAMM long-video layout, "
                        "the spotting ground truth for `mertk predict`)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = sub.add_parser("models", help=COMMANDS["models"][1], description=COMMANDS["models"][1])
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = sub.add_parser("prepare", help=COMMANDS["prepare"][1], description=COMMANDS["prepare"][1])
    p.add_argument("dataset", help="dataset or composite name")
    p.add_argument("root", type=Path, help="folder holding the dataset as shipped")
    families = (", ".join(importlib.import_module(".preprocess.features", __package__).FEATURES.names())
                if command == "prepare" else "the registered names: mertk prepare --help")  # only prepare pays the import
    p.add_argument("--features", default=None, help=f"feature family ({families})")
    p.add_argument("--model", default=None, help="build the features a registered model takes (see `mertk models`)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a pipeline parameter, e.g. --set eye_mask=true --set flow=tvl1_opencv")
    p.add_argument("--cache", type=Path, default=None, help="cache folder (default $MERTK_CACHE or ~/.cache/mertk/features)")
    p.add_argument("--no-cache", action="store_true", help="compute everything, store nothing")
    p.add_argument("--official", type=Path, default=None, help="official clip list defining a composite exactly")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="read label-csv paths that leave ROOT (image-folder, megc2019-features); refused by default")
    p.add_argument("--workers", type=int, default=0, help="processes (default: one per core, at most 4)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = sub.add_parser("metrics", help=COMMANDS["metrics"][1], description=COMMANDS["metrics"][1])
    p.add_argument("predictions", type=Path, help="CSV with columns dataset, subject, clip, y_true, y_pred [, fold, p_<class>...]")
    p.add_argument("--classes", default=None, help="class order, comma-separated (default: from p_ columns or sorted labels)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("flow", help=COMMANDS["flow"][1], description=COMMANDS["flow"][1])
    p.add_argument("a", type=Path, help="first image")
    p.add_argument("b", type=Path, help="second image")
    p.add_argument("--method", default="tvl1", help="registered flow method (tvl1, tvl1_opencv, farneback, dis, horn_schunck)")
    p.add_argument("--out", type=Path, default=None, help="write the H x W x 2 float32 flow (u, v) as .npy")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = sub.add_parser("train", help=COMMANDS["train"][1], description=COMMANDS["train"][1])
    p.add_argument("recipe", help="a shipped recipe name (e.g. laenet-megc2019) or a recipe YAML file")
    p.add_argument("--data", type=Path, default=None, help="folder holding the datasets (default $MERTK_DATA or .)")
    p.add_argument("--out", type=Path, default=None, help="folder for run directories (default runs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.epochs=50 --set features.eye_mask=false")
    p.add_argument("--cache", type=Path, default=None, help="feature cache (default $MERTK_CACHE or ~/.cache/mertk/features)")
    p.add_argument("--official", type=Path, default=None,
                   help="official clip list defining the recipe's composite exactly (sets data.official)")
    from .engine.parallel import add_ray_arguments

    add_ray_arguments(p)
    p.add_argument("--select-grid", action="append", default=[], metavar="train.KEY=V1,V2",
                   help="choose trainer values inside every outer fold by UF1 on inner validation subjects")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the metrics and the run directory as JSON")

    p = sub.add_parser("demo", help=COMMANDS["demo"][1], description=COMMANDS["demo"][1])
    p.add_argument("--out", type=Path, default=Path("mertk-demo"), help="output folder (default mertk-demo)")
    p.add_argument("--quick", action="store_true", help="fewer subjects and epochs (a smoke run of a minute)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    for name, (module, add_parser, _, text) in PLUGINS.items():
        if name == command:
            getattr(importlib.import_module(module), add_parser)(sub)
        else:
            sub.add_parser(name, help=text, description=text)
    return parser


def one_line(text: str) -> str:
    """An error message on one line: ANSI escape codes removed, line breaks and runs of spaces as one space."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text).split())


OUTPUT_OPTIONS = ("out", "cache", "onnx", "markdown", "annotate")


def os_error_message(exc: OSError, args: argparse.Namespace | None = None) -> str:
    """``PATH: errno text`` of a failed read or write (e.g. ``out/a.npy: No space left on device``); an
    error that carries no path (a write to an open file) names the command's output options instead."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    problem = exc.strerror or str(exc) or type(exc).__name__
    if where:
        return f"{where}: {problem}"
    outputs = [f"--{name} {getattr(args, name)}" for name in OUTPUT_OPTIONS if getattr(args, name, None) is not None]
    return f"{problem} (while writing {', '.join(outputs)})" if outputs else problem


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure: Python's, OpenCV's (code -4) or torch's allocator."""
    cv2_oom = type(exc).__module__.startswith("cv2") and (getattr(exc, "code", None) == -4
                                                           or "Insufficient memory" in str(exc))
    return isinstance(exc, MemoryError) or cv2_oom or (isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


def memory_message(exc: BaseException, args: argparse.Namespace) -> str:
    """One line: what could not be allocated, the sizes the user asked for and what to lower."""
    text = str(exc)
    found = re.search(r"Failed to allocate \d+ bytes|can't allocate memory: you tried to allocate \d+ bytes", text)
    detail = found.group(0) if found else one_line(text) or type(exc).__name__
    asked = [f"--set {item}" for item in getattr(args, "set", None) or []]
    return (f"out of memory ({detail})" + (f" with {', '.join(asked)}" if asked else "")
            + "; lower the sizes (--set size=[H,W] or flow_size=N, smaller images) or use fewer --workers")


def quiet_libraries() -> None:
    """Keep the libraries' own logging off stderr, where a command prints one line per error."""
    import warnings

    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # read when cv2 is imported (here and in workers)
    if "cv2" in sys.modules:
        sys.modules["cv2"].utils.logging.setLogLevel(sys.modules["cv2"].utils.logging.LOG_LEVEL_ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch(\.|$)")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    quiet_libraries()
    handler = COMMANDS[args.command][0] if args.command in COMMANDS else _plugin_handler(args.command)
    try:
        return handler(args)
    except MertkError as exc:
        print(f"mertk: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError as exc:
        print(f"mertk: error: {memory_message(exc, args)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a failed read or write (read-only folder, full disk, file where a folder is needed)
        if isinstance(exc, BrokenPipeError):  # e.g. `mertk models | head`: stop quietly, as other Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        print(f"mertk: error: {one_line(os_error_message(exc, args))}", file=sys.stderr)
        return EXIT_USAGE
    except (RuntimeError, Exception) as exc:
        if not out_of_memory(exc):
            raise
        print(f"mertk: error: {memory_message(exc, args)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mertk: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
