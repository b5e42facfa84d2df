"""Train the occluder segmenter that restore uses when no hole mask is given.

Example::

    python -m pipelines.train_segmenter --data-dir faces-train --out runs/segmenter \\
        --image-size 64 --steps 6000 --max-minutes 120

Runs resume from the folder's last checkpoint; a second run on the same folder is
refused. See :mod:`tfface.segmenter.train`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

import tfface  # noqa: F401
from tfface.cli import prog_name


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog_name("pipelines.train_segmenter"),
                                description="Train the occluder segmentation U-Net on real faces.")
    p.add_argument("--data-dir", required=True, help="folder of aligned face photos")
    p.add_argument("--out", required=True, help="run folder (resumed if it holds a checkpoint)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--filters", default="16,32,64,128", help="U-Net widths per level")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--mask-dir", help="folder of irregular hole masks (adds 'irregular')")
    p.add_argument("--facemask-dir", help="folder of face-mask templates (MaskTheFace layout)")
    p.add_argument("--render-scale", type=int, default=2,
                   help="draw occluders at this many times --image-size, then shrink "
                        "(anti-aliased edges, photo-like texture); 1 = draw at the size")
    p.add_argument("--photometric", type=float, default=0.5,
                   help="chance of each camera-like change (blur, noise, JPEG, contrast) "
                        "and of recolouring the occluder; 0 = off")
    p.add_argument("--photo-conditions", type=float, default=1.0,
                   help="scale of the chances of the photo's conditions (low light, "
                        "grayscale, blur, noise) on face and occluder alike; 0 = off")
    p.add_argument("--occlusions", help="training mixture as name=weight,... (default: "
                   "tfface.segmenter.model.SEGMENTER_MIXTURE); held-out generators refused")
    p.add_argument("--init-from", help="start a new run from these weights: a segmenter run "
                   "folder or a float segmenter .tflite (e.g. the shipped segmenter_fp16.tflite)")
    p.add_argument("--lr-warmup", type=int, default=0, help="steps of learning-rate warm-up")
    p.add_argument("--clean-fraction", type=float, default=0.1,
                   help="share of training faces left undamaged (their mask is empty: "
                        "teaches no false holes)")
    p.add_argument("--far-weight", type=float, default=0.0,
                   help="extra cross-entropy weight on pixels more than --far-margin px from "
                        "the true hole (penalises false holes on bare skin); 0 = off")
    p.add_argument("--far-margin", type=int, default=2,
                   help="pixels around the true hole spared by --far-weight")
    return p


def _mixture_arg(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        name, _, w = part.strip().partition("=")
        try:
            out[name.strip()] = float(w)
        except ValueError:
            raise ValueError(f"--occlusions takes name=weight,..., got '{part}'") from None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from tfface.fileio import OutputDirError
    from tfface.segmenter.model import SegmenterConfig
    from tfface.segmenter.train import train_segmenter

    try:
        extra = {"occlusions": _mixture_arg(args.occlusions)} if args.occlusions else {}
        cfg = SegmenterConfig(
            data_dir=args.data_dir, image_size=args.image_size,
            filters=[int(v) for v in args.filters.split(",")], batch_size=args.batch_size,
            steps=args.steps, lr=args.lr, mask_dir=args.mask_dir,
            facemask_dir=args.facemask_dir, render_scale=args.render_scale,
            photometric=args.photometric, photo_conditions=args.photo_conditions,
            init_from=args.init_from, lr_warmup=args.lr_warmup,
            clean_fraction=args.clean_fraction, far_weight=args.far_weight,
            far_margin=args.far_margin, **extra)
        last = train_segmenter(cfg, args.out, max_minutes=args.max_minutes)
    except (ValueError, OutputDirError) as e:  # bad settings, a busy folder, a NaN loss
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"segmenter trained: {last}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
