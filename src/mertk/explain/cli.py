"""``mertk explain``: saliency maps of a trained model on the user's own inputs.

For every input (a clip's frame folder, a prepared feature ``.npy``, or one face image for still-image
models) the input is prepared exactly as training did (the checkpoint's
:class:`~mertk.preprocess.pipeline.PrepareConfig`), classified with the checkpoint's inference rule,
and explained with the original (``grad_I S_j``) and improved (``grad_I softmax(o / M)_j``) saliency
maps of shcnn-miao-2019 (:mod:`mertk.explain.saliency`), the improved saliency pixels (eq. 11) and the
paper's adversarial check (lower the saliency pixels by 20 and re-classify; the same number of random
pixels as a control). PNG overlays go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..data.base import frame_files as _frame_files
from ..errors import DataError, MertkError, check_writable
from ..imagefiles import IMAGE_SUFFIXES


def frame_files(folder: Path) -> list[Path]:
    """The image files of a clip folder in natural order (img2 before img10); none is a DataError."""
    files = _frame_files(folder, IMAGE_SUFFIXES)
    if len(files) < 2:
        raise DataError(folder, f"a clip folder needs at least 2 frames ({', '.join(IMAGE_SUFFIXES)}), found {len(files)}")
    return files


# ---------------------------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------------------------


def _load_input(path: Path, checkpoint: Any, apex: int | None) -> dict[str, np.ndarray]:
    """``prepare_frames``-style arrays (``x`` at least) of one input path."""
    import cv2

    from ..preprocess.crop import resize
    from ..preprocess.imageio import read_image
    from ..preprocess.pipeline import prepare_frames, read_frames

    config = checkpoint.prepare_config()
    feature, family = config.feature, config.family
    if not path.exists():
        raise DataError(path, "input not found")
    if path.is_dir():
        if not family.clips:
            raise DataError(path, f"{checkpoint.model} classifies still faces ({feature}): give one image, not a frame folder")
        frames = read_frames(frame_files(path))
        if apex is not None and not 0 <= apex < len(frames):
            raise DataError(path, f"--apex {apex} is outside the clip's {len(frames)} frames (0-based)")
        return prepare_frames(frames, config, apex_index=apex, source=str(path))
    if path.suffix.lower() == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(path, f"unreadable .npy ({exc})") from None
        if x.dtype.kind in "fc" and not np.isfinite(x).all():
            raise DataError(path, f"holds {int(np.isnan(x).sum())} NaN and {int(np.isinf(x).sum())} inf value(s); "
                                  f"a feature must be finite")
        return {"x": x}
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if family.clips:
            raise DataError(path, f"a single image is an input only for still-image models (gray_face); {checkpoint.model} "
                                  f"takes {feature}: give a clip's frame folder or a prepared .npy")
        image = read_image(path, cv2.IMREAD_GRAYSCALE)
        return {"x": resize(image, config.size)[None].astype(np.uint8)}
    raise DataError(path, f"unknown input: expected a frame folder, a .npy feature or an image ({', '.join(IMAGE_SUFFIXES)})")


def _target_index(target: str | None, classes: Sequence[str]) -> int | None:
    if target is None:
        return None
    if target not in classes:
        raise MertkError(f"unknown target class {target!r}; the model's classes are: {', '.join(classes)}")
    return list(classes).index(target)


def explain(source: str | Path, inputs: Sequence[str | Path], *, out: str | Path, target: str | None = None,
            adversarial: bool = True, apex: int | None = None) -> dict[str, Any]:
    """Saliency maps of a run's final model (or a checkpoint) on each input; PNGs written to ``out``.

    Args:
        source: a run directory (its ``model.pt``) or a checkpoint file.
        inputs: clip frame folders (onset first), prepared ``.npy`` model inputs, or face images
            (``gray_face`` models only).
        out: folder for ``<input>_saliency.png`` (input | original | improved | saliency pixels),
            ``<input>_frames.png`` (clip models: per-frame improved maps) and ``<input>_maps.npz``.
        target: explain this class (a class name) instead of the predicted one.
        adversarial: run the paper's check (saliency pixels lowered by 20 vs as many random pixels).
        apex: the apex frame's 0-based index in a frame folder; ``None`` spots it as the checkpoint's
            configuration says.

    Returns:
        ``{"model", "classes", "source", "out", "inputs": [...]}``; each input has ``predicted``,
        ``probabilities`` (class -> p, the clip-level rule), ``target``, ``norm_original``,
        ``norm_improved``, ``saliency_pixels``, ``pixels_total``, ``adversarial`` (or None) and ``files``.
    """
    from .figures import frames_figure, representative_sample, saliency_figure
    from .saliency import ExplainError, adversarial_check, saliency_maps, saliency_pixels

    from ..engine.checkpoint import classify, load_checkpoint, model_inputs

    checkpoint = load_checkpoint(source)
    classes = list(checkpoint.classes)
    j = _target_index(target, classes)
    if not inputs:
        raise MertkError("explain: give at least one input (a frame folder, a .npy feature or an image)")
    model = checkpoint.build_model()
    spec = tuple(model.input_spec.shape)
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    used_names: set[str] = set()
    for raw in inputs:
        path = Path(raw).expanduser()
        arrays = _load_input(path, checkpoint, apex)
        try:
            xs, apex_mask = model_inputs(checkpoint, arrays)
        except (KeyError, ValueError, IndexError) as exc:
            raise DataError(path, f"not a {checkpoint.features['feature']} feature of this model ({exc})") from None
        if tuple(xs.shape[1:])[0] != spec[0] or (getattr(model, "strict_size", True) and tuple(xs.shape[1:]) != spec):
            raise DataError(path, f"prepared input has shape {tuple(xs.shape[1:])}, the model takes {spec}")
        probs, pred = classify(checkpoint, model, arrays)
        sample = xs[representative_sample(apex_mask, checkpoint.inference)]
        want = pred if j is None else j
        try:
            result = saliency_maps(model, sample, target=want)
        except ExplainError as exc:
            raise DataError(path, str(exc)) from None
        check = adversarial_check(model, sample, target=want) if adversarial else None
        name = path.stem if path.is_file() else path.name
        while name in used_names:
            name += "_"
        used_names.add(name)
        files = [out / f"{name}_saliency.png"]
        files[0].write_bytes(saliency_figure(sample.numpy(), result, classes, title=name, check=check))
        if sample.dim() == 4:
            files.append(out / f"{name}_frames.png")
            files[-1].write_bytes(frames_figure(sample.numpy(), result))
        files.append(out / f"{name}_maps.npz")
        np.savez_compressed(files[-1], original=result.original, improved=result.improved,
                            saliency_pixels=saliency_pixels(result.improved), scores=result.scores, logits=result.logits)
        mask = saliency_pixels(result.improved)
        rows.append({
            "input": str(path),
            "predicted": classes[pred],
            "probabilities": {c: float(p) for c, p in zip(classes, probs)},
            "samples": int(len(xs)),
            "target": classes[result.target],
            "sample_scores": {c: float(p) for c, p in zip(classes, result.scores)},
            "shrinkage": result.shrinkage,
            "norm_original": float(np.linalg.norm(result.original)),
            "norm_improved": float(np.linalg.norm(result.improved)),
            "saliency_pixels": int(mask.sum()),
            "pixels_total": int(mask.size),
            "adversarial": None if check is None else {
                "delta": check["delta"],
                "before": classes[check["pred_before"]],
                "after_saliency": classes[check["pred_saliency"]],
                "changed_saliency": bool(check["changed_saliency"]),
                "score_change_saliency": check["score_change_saliency"],
                "after_random": classes[check["pred_random"]],
                "changed_random": bool(check["changed_random"]),
                "score_change_random": check["score_change_random"],
            },
            "files": [str(f) for f in files],
        })
    return {"model": checkpoint.model, "classes": classes, "source": str(source), "out": str(out), "inputs": rows}


def format_explain(summary: Mapping[str, Any]) -> str:
    """Plain-text lines for :func:`explain`'s summary."""
    lines = [f"{summary['model']} ({', '.join(summary['classes'])}) from {summary['source']}"]
    for row in summary["inputs"]:
        probs = "  ".join(f"{c} {p:.4f}" for c, p in row["probabilities"].items())
        lines.append(f"{row['input']}: predicted {row['predicted']}  [{probs}]")
        lines.append(f"  saliency for {row['target']}: |original| {row['norm_original']:.3e}  |improved| "
                     f"{row['norm_improved']:.3e}  (M = {row['shrinkage']:.4g}); saliency pixels "
                     f"{row['saliency_pixels']} of {row['pixels_total']}")
        adv = row["adversarial"]
        if adv is not None:
            lines.append(f"  adversarial check (lower by {adv['delta']:.4g}): saliency pixels {adv['before']} -> "
                         f"{adv['after_saliency']} ({'changed' if adv['changed_saliency'] else 'unchanged'}, S_j "
                         f"{adv['score_change_saliency']:+.4f}); random pixels -> {adv['after_random']} "
                         f"({'changed' if adv['changed_random'] else 'unchanged'}, S_j {adv['score_change_random']:+.4f})")
        lines.append("  wrote " + ", ".join(row["files"]))
    return "\n".join(lines)


HELP = "saliency maps (original and improved, shcnn-miao-2019) of a trained model on clips or images"


def add_explain_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``mertk explain`` to an argparse sub-parsers object."""
    p = sub.add_parser("explain", help=HELP, description=HELP + ". Writes PNG overlays (original | improved | saliency "
                       "pixels) and prints the prediction, the map norms and the adversarial check.")
    p.add_argument("source", type=Path, help="a run directory (its model.pt) or a checkpoint file")
    p.add_argument("inputs", type=Path, nargs="+", metavar="INPUT",
                   help="a clip's frame folder (onset first), a prepared feature .npy, or a face image (gray_face models)")
    p.add_argument("--out", type=Path, default=Path("explain"), help="folder for the PNGs (default ./explain)")
    p.add_argument("--target", default=None, help="explain this class instead of the predicted one")
    p.add_argument("--apex", type=int, default=None,
                   help="0-based apex frame index in a frame folder (default: spotted as the checkpoint's config says)")
    p.add_argument("--no-adversarial", action="store_true", help="skip the adversarial check")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def cmd_explain(args: argparse.Namespace) -> int:
    """Run :func:`explain` for parsed arguments and print the summary."""
    check_writable(args.out, folder=True)
    summary = explain(args.source, args.inputs, out=args.out, target=args.target, adversarial=not args.no_adversarial,
                      apex=args.apex)
    print(json.dumps(summary, indent=2) if args.json else format_explain(summary))
    return 0
