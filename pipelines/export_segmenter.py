"""Convert a trained occluder segmenter to int8 and fp16, measure them on held-out faces, ship them.

Example::

    python -m pipelines.export_segmenter runs/segmenter --calib-dir faces-train \\
        --eval-dir faces-dev --out android_demo_assets/segmenter

Writes ``segmenter_int8.tflite`` (float input/output, int8 inside; the card embedded in
its metadata too), ``segmenter_int8.json`` (the card: tensors, normalization, training
data, pixel accuracy and IoU of the Keras model and of the int8 file on the eval
folder, per occluder), and ``segmenter_int8_samples.json`` + ``samples/`` (inputs and
expected outputs on the public-domain astronaut photo, for the asset test); and the same
four for ``segmenter_fp16`` (float16 weights: the file for GPU delegates). ``--modes``
picks one of them. The library code is :mod:`tfface.segmenter.export`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

import tfface  # noqa: F401
from tfface.cli import prog_name


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog_name("pipelines.export_segmenter"),
                                description="int8 conversion, held-out figures and the "
                                "android_demo_assets entry of an occluder segmenter.")
    p.add_argument("run", help="segmenter training folder (python -m pipelines.train_segmenter)")
    p.add_argument("--calib-dir", required=True, help="face folder for int8 calibration "
                   "(the training faces)")
    p.add_argument("--eval-dir", required=True, help="face folder never seen in training")
    p.add_argument("--eval-count", type=int, default=64, help="faces per occluder")
    p.add_argument("--samples", type=int, default=200, help="calibration samples")
    p.add_argument("--out", default="android_demo_assets/segmenter")
    p.add_argument("--modes", default="int8,fp16",
                   help="files to write, comma-separated: int8 (CPU, the smallest) and/or "
                        "fp16 (for GPU delegates)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tfface.segmenter.export import MODES, export_segmenter
    from tfface.segmenter.model import load_segmenter

    try:
        model, cfg = load_segmenter(args.run)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: cannot load the segmenter run {args.run}: {e}", file=sys.stderr)
        return 2
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if not modes or bad:
        print(f"error: --modes takes a comma list of {', '.join(MODES)}, got '{args.modes}'",
              file=sys.stderr)
        return 2
    for card in export_segmenter(model, cfg, args.run, calib_dir=args.calib_dir,
                                 eval_dir=args.eval_dir, out=args.out, modes=modes,
                                 eval_count=args.eval_count, samples=args.samples):
        print(f"{card['file']}: {card['size_bytes'] / 1e6:.2f} MB")
        print(json.dumps(card["quality"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
