"""Preview what a model will learn from: a PNG grid of synthesized training samples.

Examples::

    python -m pipelines.preview --task inpaint --out grid.png
    python -m pipelines.preview --task inpaint --occlusion boxes --data-dir ~/faces --out boxes.png
    python -m pipelines.preview --task sr --degradation realesrgan --scale 4 --out sr.png

Rows are samples. Inpainting columns: clean | damaged | mask (white = hole).
Super-resolution columns: clean | lr (nearest-neighbour enlarged, so its pixels show) |
lr_up (bicubic enlarged). Samples come from :func:`tfface.data.pipeline.make_dataset`, so they
are exactly what training sees.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import numpy as np

import tfface  # noqa: F401  (selects tf_keras before TensorFlow loads)
from tfface.cli import prog_name
from tfface.config import TASKS, Config, ConfigError, validate

GAP = 2
"""Pixels of white between tiles."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("pipelines.preview", "tfface-preview"),
        description="Write a PNG grid of synthesized training samples (clean / damaged / "
        "mask for inpainting; clean / lr / lr_up for super-resolution).",
        epilog="Writes one PNG file at --out PNG (its folder is created); nothing else.",
    )
    p.add_argument("--task", choices=TASKS, default="inpaint",
                   help="inpaint (occlusions) or sr (super-resolution); default inpaint")
    p.add_argument("--occlusion", metavar="NAME",
                   help="inpaint: show only this occlusion generator (default: the "
                   "training mixture)")
    p.add_argument("--degradation", default="none",
                   help="sr: degradation preset: none, classic or realesrgan (default none)")
    p.add_argument("--downscale", default="bicubic", choices=("area", "bicubic", "bilinear"),
                   help="sr: downscaling kernel (default bicubic)")
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4),
                   help="sr: scale factor (default 4)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder of face photos (default: built-in synthetic faces)")
    p.add_argument("--size", type=int, default=128,
                   help="side of the faces in pixels (multiple of 8; default 128)")
    p.add_argument("--n", type=int, default=6, help="number of samples (rows; default 6)")
    p.add_argument("--seed", type=int, default=1234, help="global synthesis seed")
    p.add_argument("--split", choices=("train", "eval"), default="train",
                   help="which split's synthesis to show (default train)")
    p.add_argument("--out", required=True, metavar="PNG", help="output PNG path")
    return p


def _config(args) -> Config:
    cfg = Config()
    d = cfg.data
    if args.data_dir:
        d.source, d.data_dir = "folder", args.data_dir
    d.task, d.image_size, d.seed = args.task, args.size, args.seed
    d.scale, d.sr_downscale, d.degradation = args.scale, args.downscale, args.degradation
    d.lr_up = args.task == "sr"
    if args.task == "sr":  # the data of an SR family (validation checks arch vs task)
        cfg.model.arch = "srgan"
    d.eval_count = max(args.n, 1)
    d.synthetic_count = max(args.n, 64)
    if args.occlusion:
        d.occlusions = {args.occlusion: 1.0}
        d.eval_occlusions = {args.occlusion: 1.0}
    if args.n < 1:
        raise ConfigError("--n must be >= 1")
    validate(cfg)
    return cfg


def _tile(x: np.ndarray, size: int) -> np.ndarray:
    """[-1, 1] float (any side, 1 or 3 channels) → uint8 RGB ``size`` square (nearest)."""
    from tfface.imageio import to_uint8

    img = to_uint8(x) if x.shape[-1] == 3 else (np.clip(x, 0, 1) * 255).astype(np.uint8)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    rep = size // img.shape[0]
    if rep > 1:
        img = img.repeat(rep, axis=0).repeat(rep, axis=1)
    return img


def make_grid(batch: dict, task: str) -> np.ndarray:
    """Rows of tiles for one batch of :func:`make_dataset` output, uint8 RGB."""
    keys = ("clean", "occluded", "mask") if task == "inpaint" else ("clean", "lr", "lr_up")
    size = batch["clean"].shape[1]
    n = batch["clean"].shape[0]
    cols = len(keys)
    h = n * size + (n + 1) * GAP
    w = cols * size + (cols + 1) * GAP
    grid = np.full((h, w, 3), 255, np.uint8)
    for r in range(n):
        for c, k in enumerate(keys):
            y, x = GAP + r * (size + GAP), GAP + c * (size + GAP)
            grid[y : y + size, x : x + size] = _tile(batch[k][r], size)
    return grid


def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # autograph notes about lambdas are not for users
    from tfface.data import occlusion as occ
    from tfface.data.sources import SourceError

    try:
        cfg = _config(args)
        if args.occlusion and args.occlusion not in occ.OCCLUSIONS:
            raise ConfigError(
                f"unknown occlusion generator '{args.occlusion}'; "
                f"valid names: {', '.join(sorted(occ.OCCLUSIONS))}"
            )
        from tfface.data.pipeline import make_dataset
        from tfface.imageio import write_image

        ds = make_dataset(cfg, args.split, batch_size=args.n, drop_remainder=False)
        batch = {k: v.numpy() for k, v in next(iter(ds)).items()}
        grid = make_grid(batch, args.task)
        write_image(args.out, grid)
    except (ConfigError, SourceError, ValueError, OSError) as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    print(f"wrote {os.path.abspath(args.out)} ({grid.shape[1]}x{grid.shape[0]} px, "
          f"{batch['clean'].shape[0]} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
