"""Hole-area statistics and preview images of every occlusion generator.

Prints, per generator, the mean and standard deviation of the hole fraction over
``--seeds`` seeds at ``--size`` px (aligned-face landmarks,
:data:`tfface.data.sources.CANONICAL_LANDMARKS`), the figures docs/occlusions.md
states; with ``--previews DIR`` it also writes ``DIR/occlusion_<name>.png``: four
faces at 128 px, each shown occluded (fill as in training) above its mask.

    python -m benchmarks.occlusion_stats --mask-dir ../shared/data/masks-irregular \\
        --facemask-dir ../shared/data/facemask-templates --previews docs/img

Previews use the built-in synthetic faces unless ``--data-dir`` is given (do not
commit previews made from datasets that may not be redistributed, such as CelebA).
"""

from __future__ import annotations

import argparse
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tfface  # noqa: E402,F401
import tensorflow as tf  # noqa: E402

from tfface.config import DataConfig  # noqa: E402
from tfface.data import occlusion as occ  # noqa: E402
from tfface.data.sources import CANONICAL_LANDMARKS, make_source  # noqa: E402


def _data_cfg(args, size: int, names) -> DataConfig:
    d = DataConfig(image_size=size, occlusions={n: 1.0 for n in names})
    d.mask_dir, d.facemask_dir = args.mask_dir, args.facemask_dir
    return d


def _names(args) -> list[str]:
    names = sorted(occ.OCCLUSIONS, key=occ.OCCLUSION_IDS.get)
    if not args.mask_dir:
        names.remove("irregular")
    return args.only or names


def area_stats(args) -> list[tuple[str, float, float, float, float]]:
    names = _names(args)
    gens = occ.make_occlusion_fns(_data_cfg(args, args.size, names), names)
    lm = tf.constant(CANONICAL_LANDMARKS)
    seeds = tf.stack(
        [tf.range(args.seeds, dtype=tf.int64), tf.fill([args.seeds], tf.constant(3, tf.int64))], 1
    )
    rows = []
    for name in names:
        fn = gens[name].mask
        ds = tf.data.Dataset.from_tensor_slices(seeds).map(
            lambda s: tf.reduce_mean(fn(s, args.size, lm)), num_parallel_calls=tf.data.AUTOTUNE
        )
        fracs = np.concatenate(list(ds.batch(256).as_numpy_iterator()))
        rows.append((name, fracs.mean(), fracs.std(), fracs.min(), fracs.max()))
        print(f"{name:16s} mean {fracs.mean():.3f}  std {fracs.std():.3f}  "
              f"min {fracs.min():.3f}  max {fracs.max():.3f}", flush=True)
    return rows


def previews(args) -> None:
    import cv2

    names = _names(args)
    size = 128
    d = _data_cfg(args, size, names)
    if args.data_dir:
        d.source, d.data_dir = "folder", args.data_dir
    faces = list(make_source(d).dataset("eval").take(4).as_numpy_iterator())
    gens = occ.make_occlusion_fns(d, names)
    os.makedirs(args.previews, exist_ok=True)
    for name in names:
        tiles = []
        for i, el in enumerate(faces):
            out = occ.occlude(
                el["image"], el["landmarks"], tf.constant([i, 11], tf.int64), {name: 1.0}, gens
            )
            top = out["occluded"].numpy().round().astype(np.uint8)
            bottom = np.repeat((out["mask"].numpy() * 255).astype(np.uint8), 3, axis=2)
            tiles.append(np.concatenate([top, bottom], 0))
        sheet = np.concatenate(tiles, 1)
        path = os.path.join(args.previews, f"occlusion_{name}.png")
        cv2.imwrite(path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print("wrote", path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seeds", type=int, default=200)
    p.add_argument("--mask-dir", default=None)
    p.add_argument("--facemask-dir", default=None)
    p.add_argument("--data-dir", default=None, help="faces for the previews (default: synthetic)")
    p.add_argument("--previews", default=None, help="folder for the preview PNGs")
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--no-stats", action="store_true")
    args = p.parse_args(argv)
    if not args.no_stats:
        area_stats(args)
    if args.previews:
        previews(args)


if __name__ == "__main__":
    main()
