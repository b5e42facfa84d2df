"""Convert a trained run to ``.tflite`` files, each with its model card.

Examples::

    python -m tflite.convert --int8 --run runs/vnet-demo-20261121-130000
    python -m tflite.convert --float --fp16 --dynamic --int8 --run RUN_DIR --out-dir dist/
    python -m tflite.convert --int8 --qat 200 --run RUN_DIR          # + quantization-aware
    python -m tflite.convert --int8 --auto-mixed 0.1 --run RUN_DIR   # some layers float
    python -m tflite.convert --int8 --prune 0.5 --run RUN_DIR        # pruned, then int8

Each mode writes ``model_<mode>.tflite`` and ``model_<mode>.json`` (the model card: task,
tensor names/shapes/dtypes, how to map pixels to the input range and the output back to
pixels, quantization parameters, training data, versions and the measured fidelity of
the file to the Keras model). The conversion is :mod:`tfface.export.convert` (the card
format and its checks: :mod:`tfface.cards`); this module parses the flags, prints what
was written and sets the exit status.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import replace
from typing import Any, Sequence

import tfface  # noqa: F401

from tfface.cards import file_sha256
from tfface.cli import prog_name
from tfface.export.android import ANDROID_DIR, android_folder, export_android
from tfface.export.convert import (
    ConversionError, Converted, converted_notes, convert_run, load_run_to_convert,
    low_fidelity_warnings, paths_text, refresh_card, summary_table,
)
from tfface.export.quantize import MIN_CALIBRATION_SAMPLES, MODES, QuantizationConfig
from tfface.fileio import OutputDirError
from tfface.rundir import RUNS_ROOT, latest_run, weights_file
from tfface.runlock import DirBusyError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("tflite.convert", "tfface-convert"),
        description="Convert a training run's generator into .tflite files, one per mode, "
        "each with a model card (.json) that tells an app how to feed and read it.",
        epilog="Writes into the run directory (or --out-dir DIR): model_<mode>.tflite and "
        "its card model_<mode>.json per mode (e.g. model_int8, model_int8_mixed, model_fp16, "
        "model_qat); with --android also a copy, sample PNGs and <stem>_samples.json in "
        f"{ANDROID_DIR}/<arch>/. Without --run: the most recently trained run under runs/.",
    )
    p.add_argument("--run", metavar="RUN_DIR",
                   help="run directory written by python -m pipelines.train (default: the "
                   "most recently trained run under runs/)")
    p.add_argument("--weights", choices=["best", "last"], default="best",
                   help="which generator weights of the run to convert (default: best)")
    for mode, text in [
        ("float", "float32 (reference)"),
        ("fp16", "float16 weights"),
        ("dynamic", "dynamic range: int8 weights, float activations"),
        ("int8", "full integer: int8 weights and activations, calibrated on pipeline data"),
    ]:
        p.add_argument(f"--{mode}", action="store_true", help=text)
    p.add_argument("--qat", type=int, metavar="STEPS",
                   help="quantization-aware training: fine-tune a quantized copy of the "
                   "generator for STEPS steps on the run's training data with its pixel loss "
                   "(tensorflow-model-optimization), then write a full-integer file "
                   "model_qat.tflite")
    p.add_argument("--qat-lr", type=float, default=1e-4, metavar="LR",
                   help="learning rate of --qat fine-tuning (default 1e-4, constant)")
    p.add_argument("--io", choices=["float", "int8", "uint8"], default="float",
                   help="input/output tensor type of --int8/--qat files (default: float, the "
                   "quantize/dequantize then runs inside the file)")
    p.add_argument("--keep-float", nargs="+", metavar="LAYER", default=[],
                   help="--int8: keep these Keras layers' ops in float (selective "
                   "quantization via TFLite's quantization debugger); an unknown name lists "
                   "the valid ones. The file is model_int8_mixed.tflite")
    p.add_argument("--auto-mixed", type=float, metavar="DB",
                   help="--int8: keep the fewest layers in float (ranked by the quantization "
                   "debugger's per-layer error) so the file's PSNR on the calibration data "
                   "stays within DB dB of the float model's; reports the layers")
    p.add_argument("--prune", type=float, metavar="SPARSITY",
                   help="before converting, prune every conv/dense kernel to SPARSITY "
                   "(0-1, e.g. 0.5) with tensorflow-model-optimization, fine-tuning "
                   "--prune-steps steps; reports achieved sparsity and gzip size "
                   "(files get a _prunedNN suffix)")
    p.add_argument("--prune-steps", type=int, default=100, metavar="N",
                   help="fine-tuning steps of --prune (default 100)")
    p.add_argument("--samples", type=int, default=200, metavar="N",
                   help=f"representative samples for --int8/--qat calibration (default 200, at "
                   f"least {MIN_CALIBRATION_SAMPLES})")
    p.add_argument("--input-size", type=int, metavar="PX",
                   help="convert the generator for inputs of PX pixels a side instead of the "
                   "run's (the low-resolution side for SR): a fully convolutional model "
                   "keeps its weights, e.g. the x4 SR model for 64 px tiles (--android: "
                   "srgan_lr64/); a model whose weights depend on the size is refused. Needs "
                   "--out-dir (the files keep their names)")
    p.add_argument("--out-dir", metavar="DIR", help="where files go (default: the run directory)")
    p.add_argument("--recard", nargs="+", metavar="FILE",
                   help="instead of converting: rewrite the model card of existing .tflite "
                   "files (FILE.json beside each and the copy inside it) in the current card "
                   "format, keeping the model and its measured figures unchanged")
    p.add_argument("--android", action="store_true",
                   help=f"also copy each file, its card, sample inputs and expected outputs "
                   f"into {ANDROID_DIR}/<arch>/ when its input is the shipped file's (128 px; SR: "
                   f"32 px); else <arch>_x<scale>/ for SR of another scale than x4, "
                   f"<arch>_lr<px>/ for SR of another input size, <arch><size>/ for a "
                   f"restorer of another size (e.g. vnet256/). A folder that already holds "
                   f".tflite files (the shipped ones, or an earlier export) is refused unless "
                   f"--replace-assets is given")
    p.add_argument("--android-folder", metavar="NAME",
                   help=f"with --android: write into {ANDROID_DIR}/NAME/ instead of the folder "
                   "named by the model's kind, for a second file of the same kind (e.g. "
                   "srgan_realism beside srgan); a plain folder name: letters, digits, _ and -")
    p.add_argument("--replace-assets", action="store_true",
                   help="with --android: replace the files of that folder, e.g. to rebuild "
                   "a shipped file from its run (tfface-restore's defaults are links to them)")
    return p


def _check_args(args, modes: list[str]) -> str | None:
    """A usage problem of the flags, as a message (None when they are fine)."""
    if not modes:
        return "choose at least one mode: --float, --fp16, --dynamic, --int8 or --qat STEPS"
    if args.keep_float and args.auto_mixed is not None:
        return "use either --keep-float or --auto-mixed, not both"
    if (args.keep_float or args.auto_mixed is not None) and "int8" not in modes:
        return ("--keep-float/--auto-mixed select layers of a post-training full-integer "
                "file: add --int8")
    if args.auto_mixed is not None and args.auto_mixed < 0:
        return f"--auto-mixed takes a PSNR drop in dB >= 0, got {args.auto_mixed}"
    if args.qat is not None and args.qat < 1:
        return f"--qat takes a number of fine-tuning steps >= 1, got {args.qat}"
    if args.prune is not None and not 0.0 < args.prune < 1.0:
        return f"--prune takes a sparsity between 0 and 1 (e.g. 0.5), got {args.prune}"
    if args.prune is not None and args.prune_steps < 1:
        return f"--prune-steps must be >= 1, got {args.prune_steps}"
    if args.prune is not None and "qat" in modes:
        return ("--prune with --qat is not supported: quantization-aware fine-tuning would "
                "refill the pruned weights; prune with --int8 instead")
    if args.android_folder is not None and not args.android:
        return "--android-folder names the folder of --android: add --android"
    if args.android_folder is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}",
                                                            args.android_folder):
        return ("--android-folder takes a plain folder name (letters, digits, _ and -), got "
                f"{args.android_folder!r}")
    if args.input_size is not None and not args.out_dir:
        return ("--input-size writes files of another shape under the same names: give "
                "--out-dir DIR, so the run's own files are not replaced")
    if args.samples < MIN_CALIBRATION_SAMPLES:
        return (f"--samples must be at least {MIN_CALIBRATION_SAMPLES} for a reliable "
                "int8 calibration")
    return None


def _modes(args) -> list[str]:
    """The conversion modes the flags ask for, in :data:`MODES` order (QAT last)."""
    modes = [m for m in MODES if m != "qat" and getattr(args, m)]
    if args.qat is not None:
        modes.append("qat")
    return modes


def _recard(paths: Sequence[str]) -> int:
    """``--recard``: rewrite the cards of existing files; the exit status."""
    for path in paths:
        try:
            card = refresh_card(path)
        except (OSError, ValueError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            return 2
        print(f"Card refreshed: {path} and {os.path.splitext(path)[0]}.json "
              f"(inputs: {', '.join(i['key'] + ' = ' + i['kind'] for i in card['inputs'])})")
    return 0


def _quantization_config(mode: str, args, pruned: bool) -> QuantizationConfig:
    """The :class:`QuantizationConfig` of one mode, from the flags."""
    if mode == "int8":
        qcfg = QuantizationConfig.for_int8(args.io, args.samples)
        if args.keep_float or args.auto_mixed is not None:
            qcfg = qcfg.with_selection(args.keep_float, args.auto_mixed)
    elif mode == "qat":
        qcfg = QuantizationConfig.for_qat(args.qat, args.io, args.samples, args.qat_lr)
    else:
        qcfg = getattr(QuantizationConfig, f"for_{mode}")()
    return replace(qcfg, pruned=args.prune) if pruned else qcfg


def _prune(model, cfg, args):
    """``--prune``: the pruned, fine-tuned model and the pruning report."""
    # tensorflow-model-optimization takes ~5 s to import: only when pruning is asked for.
    from tfface.export.qat import prune

    print(f"Pruning to {args.prune:.0%} sparsity ({args.prune_steps} fine-tuning steps) ...",
          flush=True)
    model, pruning = prune(model, cfg, args.prune, args.prune_steps)
    print(f"Achieved kernel sparsity: {pruning['achieved_sparsity']:.1%}")
    return model, pruning


def print_report(run_dir: str, rows: list[Converted], cfg,
                 pruning: dict[str, Any] | None = None) -> None:
    """The table of the files written, warnings about poor int8 files, and their paths."""
    print(summary_table(rows, pruning))
    for warning in low_fidelity_warnings(rows, cfg):
        print(warning, file=sys.stderr)
    print(paths_text(run_dir, rows))


def best_not_last_note(run_dir: str, which: str, converted: dict | None) -> str | None:
    """A line when the run's best weights (highest validation PSNR) are converted by
    default while its last weights differ: a GAN or perceptual fine-tune gains detail
    after its PSNR peak, and converting ``best`` then ships its least sharp weights."""
    if which != "best" or not converted or converted.get("file") != weights_file("best"):
        return None
    last = os.path.join(run_dir, weights_file("last"))
    if not os.path.exists(last) or file_sha256(last) == converted.get("sha256"):
        return None
    return (f"Converting the run's best weights ({weights_file('best')}: its highest "
            f"validation PSNR); its last weights ({weights_file('last')}) differ. A GAN or "
            "perceptual fine-tune gets sharper after its PSNR peak: --weights last converts "
            "those.")


def _assets_held(cfg, folder: str | None = None) -> list[str]:
    """The .tflite files already in the folder ``--android`` would write (checked before
    converting, so a refusal costs nothing)."""
    dest = os.path.join(ANDROID_DIR, folder or android_folder(cfg))
    if not os.path.isdir(dest):
        return []
    return [os.path.join(dest, f) for f in sorted(os.listdir(dest)) if f.endswith(".tflite")]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.recard:
        return _recard(args.recard)
    modes = _modes(args)
    usage = _check_args(args, modes)
    if usage:
        print(f"error: {usage}", file=sys.stderr)
        return 2
    if args.run is None:
        args.run = latest_run(RUNS_ROOT)
        if args.run is None:
            print(f"error: no --run given and no trained run under {RUNS_ROOT}/ "
                  f"({os.path.abspath(RUNS_ROOT)}); make one with: python -m pipelines.train "
                  "--arch vnet --preset demo --run-dir runs/demo", file=sys.stderr)
            return 2
        print(f"Converting the most recent run under {RUNS_ROOT}/: {args.run}", flush=True)
    try:
        run = load_run_to_convert(args.run, args.weights, args.out_dir, args.input_size)
    except (FileNotFoundError, ValueError, OutputDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    note = best_not_last_note(args.run, args.weights, run.weights)
    if note:
        print(note, flush=True)
    held = (_assets_held(run.cfg, args.android_folder)
            if args.android and not args.replace_assets else [])
    if held:
        print(f"error: --android would replace {', '.join(held)} (shipped files, or an "
              "earlier export; tfface-restore's defaults are links to the shipped ones). "
              "Pass --replace-assets to replace them, or convert without --android.",
              file=sys.stderr)
        return 2
    pruning = None
    if args.prune is not None:
        run.model, pruning = _prune(run.model, run.cfg, args)

    def converted(res: Converted, qcfg: QuantizationConfig) -> None:
        for line in converted_notes(res, qcfg):
            print(line)
        if args.android:
            print(f"Android assets: {export_android(res, run.cfg, folder=args.android_folder)}")

    qcfgs = [_quantization_config(mode, args, pruned=pruning is not None) for mode in modes]
    try:
        rows = convert_run(run, qcfgs, args.out_dir, pruning=pruning, on_converted=converted,
                           log=lambda text: print(text, flush=True),
                           busy_hint="or pass another --out-dir")
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except DirBusyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_report(args.run, rows, run.cfg, pruning)
    return 0


if __name__ == "__main__":
    sys.exit(main())
