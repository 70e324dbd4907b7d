"""The ``mertk`` command: thin sub-commands over importable functions.

Each sub-command parses its arguments, calls one function of the package and prints the result.
User-facing errors (:class:`~mertk.errors.MertkError`) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from .errors import MertkError

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


def cmd_info(args: argparse.Namespace) -> int:
    from .data.info import describe, format_info

    report = describe(args.dataset, args.root, annotation=args.annotation, gt=args.gt)
    if args.json:
        _print_json(report)
    else:
        print(format_info(report))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from .data.synth import synthesize

    summary = synthesize(args.out, subjects=args.subjects, seed=args.seed, size=args.size, progress=not args.quiet)
    if args.json:
        _print_json(summary)
    else:
        print(f"wrote the synthetic benchmark to {summary['out']}")
        for name, n in summary["datasets"].items():
            print(f"  {name:10s} {n}")
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
            print(f"{r['name']:<{width}}  {r['params']:>10,d}  {str(tuple(r['input'])):<22} {r['paper']}")
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "info": (cmd_info, "describe a dataset copy: rows, clips, frames found, labels, skipped rows"),
    "synth": (cmd_synth, "write the synthetic benchmark in the native dataset layouts"),
    "models": (cmd_models, "list registered models with parameter counts"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mertk", description="Facial micro-expression recognition toolkit.")
    parser.add_argument("--version", action="version", version=f"mertk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("info", help=COMMANDS["info"][1], description=COMMANDS["info"][1])
    p.add_argument("dataset", help="dataset or composite name (see `mertk info --list`)")
    p.add_argument("root", type=Path, help="folder holding the dataset as shipped")
    p.add_argument("--annotation", type=Path, default=None, help="annotation file, if not found under ROOT")
    p.add_argument("--gt", type=Path, default=None, help="official ground-truth list to check a composite against")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("synth", help=COMMANDS["synth"][1], description=COMMANDS["synth"][1])
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--subjects", type=int, default=12, help="distinct synthetic subjects (default 12)")
    p.add_argument("--seed", type=int, default=0, help="random seed (output is deterministic per seed)")
    p.add_argument("--size", choices=("small", "medium", "large"), default="small",
                   help="clips per subject and frames per clip (default small: the demo's size)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = sub.add_parser("models", help=COMMANDS["models"][1], description=COMMANDS["models"][1])
    p.add_argument("--json", action="store_true", help="print a JSON list")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = COMMANDS[args.command][0]
    try:
        return handler(args)
    except MertkError as exc:
        print(f"mertk: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mertk: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
