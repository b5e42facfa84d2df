"""Build the blind file: the occluder segmenter and the V-Net in one int8 graph.

Examples::

    python -m pipelines.export_blind --data-dir ../shared/data/faces-train
    python -m pipelines.export_blind --segmenter runs/seg --inpainter runs/vnet \\
        --data-dir faces-train --out runs/blind

The file takes only the aligned face (128 px, RGB in [-1, 1]) and returns the restored
face and the hole its own segmenter decided (clipped to the face ellipse, ``p > 0.5``
and the pixels above 0.1 connected to it within 8 px, grown by 2 px, as tfface-restore
decides it with two files up to the edge's reach: restore joins the whole connected
region); outside that hole the
output is the input bit for bit. The library is :mod:`tfface.export.blind`.
"""

from __future__ import annotations

import argparse
import os
import sys

import tfface  # noqa: F401
from tfface.cli import prog_name

SEGMENTER = "android_demo_assets/segmenter/segmenter_fp16.tflite"
INPAINTER = "android_demo_assets/vnet/keras"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("pipelines.export_blind"),
        description="One int8 .tflite file that finds the occluder and restores the face: the "
        "occluder segmenter, the face-ellipse clip, the threshold and the V-Net in one graph.",
        epilog="Writes OUT/model_int8_mixed.tflite, its card (.json) and, with --samples, the "
        "sample inputs and expected outputs apps and the asset test re-run.")
    p.add_argument("--segmenter", default=SEGMENTER, metavar="RUN_OR_TFLITE",
                   help="a segmenter run folder, or a float/fp16 segmenter .tflite whose weights "
                   f"are read back (default: {SEGMENTER})")
    p.add_argument("--segmenter-filters", default="16,32,64,128", metavar="LIST",
                   help="widths of a .tflite segmenter (default: 16,32,64,128)")
    p.add_argument("--inpainter", default=INPAINTER, metavar="RUN_DIR",
                   help=f"a mask-input keep_known run (default: {INPAINTER})")
    p.add_argument("--data-dir", required=True, metavar="DIR",
                   help="training faces for int8 calibration (photo-like occluders drawn on them)")
    p.add_argument("--facemask-dir", metavar="DIR",
                   help="face-mask templates for the calibration occluders (the segmenter's "
                   "training families only; default: procedural masks)")
    p.add_argument("--calibration", type=int, default=200, help="calibration faces (default 200)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="occluder probability above which a pixel is hole (default 0.5, as "
                   "restore's segmenter)")
    p.add_argument("--edge-threshold", type=float, default=None,
                   help="pixels above this probability connected to the hole join it: the "
                   "occluder's unsure edge (default 0.1 or --threshold if lower, as restore's "
                   "segmenter; equal to --threshold: off)")
    p.add_argument("--edge-steps", type=int, default=8,
                   help="how far (px, 1-64) the edge may reach from the confident hole "
                   "(default 8)")
    p.add_argument("--grow", type=int, default=2, help="px the hole is grown by (default 2)")
    p.add_argument("--no-clip", action="store_true",
                   help="do not clip the hole to the face ellipse")
    p.add_argument("--no-hole-output", action="store_true",
                   help="one output (the restored face) instead of two")
    p.add_argument("--samples", type=int, default=4,
                   help="sample inputs/outputs written beside the file (0: none)")
    p.add_argument("--out", default="android_demo_assets/blind", metavar="DIR",
                   help="output folder (default: android_demo_assets/blind, the shipped file)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from tfface.export.blind import BlindExportError, export_blind

    try:
        filters = [int(v) for v in args.segmenter_filters.split(",")]
    except ValueError:
        print(f"error: --segmenter-filters takes integers like 16,32,64,128, got "
              f"{args.segmenter_filters!r}", file=sys.stderr)
        return 2
    if args.edge_threshold is None:
        args.edge_threshold = min(0.1, args.threshold)
    if not 0.0 < args.threshold < 1.0 or args.grow < 0 or args.calibration < 1 \
            or args.samples < 0 or not 1 <= args.edge_steps <= 64 \
            or not 0.0 < args.edge_threshold <= args.threshold:
        print("error: --threshold must lie in (0, 1), --edge-threshold in (0, --threshold], "
              "--edge-steps in 1-64, --grow and --samples be >= 0 and --calibration >= 1",
              file=sys.stderr)
        return 2
    if not os.path.isdir(args.data_dir):
        print(f"error: --data-dir {args.data_dir}: no such folder", file=sys.stderr)
        return 2
    try:
        card = export_blind(args.segmenter, args.inpainter, args.data_dir, args.out,
                            segmenter_filters=filters, calibration=args.calibration,
                            threshold=args.threshold, grow=args.grow, clip=not args.no_clip,
                            hole_output=not args.no_hole_output, samples=args.samples,
                            facemask_dir=args.facemask_dir, edge_threshold=args.edge_threshold,
                            edge_steps=args.edge_steps, progress=True)
    except BlindExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    fid = card["fidelity"]
    print(f"wrote {os.path.join(args.out, card['file'])} ({card['size_bytes'] / 1e6:.2f} MB): "
          f"{fid['psnr_db_vs_keras']:.2f} dB vs Keras on {fid['images']} faces, "
          f"outside the hole unchanged: {fid.get('outside_hole_unchanged')}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
