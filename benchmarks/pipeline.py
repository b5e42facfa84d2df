"""Throughput of the data pipeline: images per second of training-pair synthesis.

Prints, per image size, the rate of the full default inpainting mixture, of each
occlusion generator alone, of the super-resolution task (clean bicubic downscale and
the ``classic`` and ``realesrgan`` degradations), and the decode-only ceiling (the
source alone: read/decode/resize or render, no synthesis). Batches of 32 after a
warm-up, as in training.

Next to the default mixture it times the same work done the naive way: the CelebA-C
walk and the boxes drawn with ``cv2.line``/``cv2.rectangle`` and the noise fill drawn
with NumPy, per element through ``tf.numpy_function`` (the common way to port such
code), and prints ours / naive.

    python -m benchmarks.pipeline --data-dir ../shared/data/faces-dev --sizes 128 256
    python -m benchmarks.pipeline              # built-in synthetic faces

The figures are for the machine it runs on (TensorFlow's CPU thread pools sized to
its cores); they are measurements, not pass/fail tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tfface  # noqa: E402,F401  (before tensorflow: selects tf_keras)
import tensorflow as tf  # noqa: E402

from tfface.config import Config, DataConfig  # noqa: E402
from tfface.data import occlusion as occ  # noqa: E402
from tfface.data.pipeline import _to_unit, make_dataset  # noqa: E402
from tfface.data.sources import make_source  # noqa: E402


def _rate(ds: tf.data.Dataset, batches: int, warmup: int, batch_size: int) -> tuple[float, float]:
    """Images per second (wall clock) and CPU milliseconds per image (all threads of
    this process) over ``batches`` batches after ``warmup`` batches (thread pools,
    autotuning and the file cache settle first). Long runs matter: the pipeline's
    buffers hold a few batches, which flatter short runs. CPU time per image is the
    steadier figure when other processes share the machine."""
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(it)
    n = batches * batch_size
    return n / (time.perf_counter() - t0), (time.process_time() - c0) / n * 1e3


def _naive_occlude_np(image, landmarks, index, seed):
    """CelebA-C (75 %) or boxes (25 %) drawn with OpenCV, noise fill with NumPy."""
    size = image.shape[0]
    rng = np.random.default_rng([int(seed), int(index)])
    mask = np.zeros((size, size), np.uint8)
    scale = size / occ.CELEBA_C_REF_WIDTH
    if rng.random() < 0.75:
        lm = landmarks * size
        starts = np.concatenate([lm[:3], lm[3:5].mean(0, keepdims=True)])
        x, y = starts[rng.integers(0, 4)]
        half = occ.CELEBA_C_SQUARE * scale / 2
        cv2.rectangle(mask, (int(x - half), int(y - half)), (int(x + half), int(y + half)), 1, -1)
        d = rng.integers(0, 4)
        for _ in range(occ.CELEBA_C_NUM_LINES):
            d = (d + 1 + rng.integers(0, 3)) % 4
            length = rng.integers(occ.CELEBA_C_LENGTH[0], occ.CELEBA_C_LENGTH[1] + 1) * scale
            width = rng.integers(occ.CELEBA_C_WIDTH[0], occ.CELEBA_C_WIDTH[1] + 1) * scale
            nx = np.clip(x + (-1, 1, 0, 0)[d] * length, 0, size - 1)
            ny = np.clip(y + (0, 0, -1, 1)[d] * length, 0, size - 1)
            cv2.line(mask, (int(x), int(y)), (int(nx), int(ny)), 1, max(1, int(width)))
            x, y = nx, ny
        kind = 0
    else:
        lo, hi = max(1, round(0.1 * size)), int(0.5 * size)
        for _ in range(rng.integers(1, occ.BOXES_MAX + 1)):
            w, h = rng.integers(lo, hi + 1, 2)
            x0, y0 = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
            cv2.rectangle(mask, (int(x0), int(y0)), (int(x0 + w - 1), int(y0 + h - 1)), 1, -1)
        kind = 1
    noise = np.clip(rng.normal(occ.NOISE_MEAN, occ.NOISE_STD, (size, size, 3)), 0, 255)
    hole = mask[:, :, None].astype(np.float32)
    occluded = image.astype(np.float32) * (1 - hole) + noise.astype(np.float32) * hole
    return occluded, hole, np.int32(kind)


def naive_dataset(cfg: Config) -> tf.data.Dataset:
    """The default mixture the naive way (see the module docstring), same batching."""
    size = cfg.data.image_size
    seed = cfg.data.seed

    def synth(el):
        occluded, mask, kind = tf.numpy_function(
            _naive_occlude_np, [el["image"], el["landmarks"], el["index"], seed],
            (tf.float32, tf.float32, tf.int32), stateful=False,
        )
        occluded.set_shape((size, size, 3))
        mask.set_shape((size, size, 1))
        kind.set_shape(())
        return {"clean": el["image"], "occluded": occluded, "mask": mask, "occlusion": kind,
                "index": el["index"]}

    def normalize(b):
        return {**b, "clean": _to_unit(b["clean"]), "occluded": _to_unit(b["occluded"])}

    ds = make_source(cfg.data).dataset("train")
    ds = ds.map(synth, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(cfg.train.batch_size, drop_remainder=True)
    return ds.map(normalize, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _config(args, size: int, **data) -> Config:
    cfg = Config()
    if args.data_dir:
        cfg.data.source, cfg.data.data_dir = "folder", args.data_dir
    cfg.data.image_size = size
    cfg.data.seed = args.seed
    cfg.data.mask_dir = args.mask_dir
    cfg.data.facemask_dir = args.facemask_dir
    for k, v in data.items():
        setattr(cfg.data, k, v)
    cfg.train.batch_size = args.batch_size
    return cfg


NAIVE_LABEL = "inpaint, mixture, naive (cv2 via numpy_function)"


def run(args) -> list[tuple[str, int, float, float]]:
    rows = []
    default_mixture = DataConfig().occlusions
    for size in args.sizes:
        cases: list[tuple[str, object]] = [("decode only (source)", None)]
        mix = " + ".join(f"{k} {v:g}" for k, v in default_mixture.items())
        cases.append((f"inpaint, mixture ({mix})", _config(args, size)))
        cases.append((NAIVE_LABEL, ("naive", _config(args, size))))
        for name in sorted(occ.OCCLUSIONS):
            cases.append((f"inpaint, {name} only", _config(args, size, occlusions={name: 1.0})))
        for degradation in ("none", "classic", "realesrgan"):
            cases.append((
                f"sr x{args.scale} ({degradation}, bicubic)",
                _config(args, size, task="sr", scale=args.scale, degradation=degradation),
            ))
        for label, cfg in cases:
            if isinstance(cfg, tuple):
                ds = naive_dataset(cfg[1])
            elif cfg is None:
                src_cfg = _config(args, size)
                ds = make_source(src_cfg.data).dataset("train")
                ds = ds.batch(args.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
            else:
                try:
                    ds = make_dataset(cfg, "train")
                except ValueError as e:  # e.g. a generator that needs a data folder
                    print(f"  {size:>4} px  {label:<46} skipped: {e}", flush=True)
                    continue
            r, cpu = _rate(ds, args.batches, args.warmup, args.batch_size)
            rows.append((label, size, r, cpu))
            print(f"  {size:>4} px  {label:<46} {r:7.0f} img/s  {cpu:6.2f} CPU ms/img", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data-dir", default=None, help="folder of face photos (default: synthetic faces)"
    )
    p.add_argument("--mask-dir", default=None,
                   help="irregular hole masks for the 'irregular' generator (else skipped)")
    p.add_argument("--facemask-dir", default=None,
                   help="face-mask templates for the 'facemask' generator")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--batches", type=int, default=60, help="timed batches per case")
    p.add_argument("--warmup", type=int, default=10, help="untimed batches first")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    tf.get_logger().setLevel("ERROR")  # autograph chatter about lambdas is not a figure

    source = f"folder {args.data_dir}" if args.data_dir else "synthetic faces"
    print(
        f"pipeline throughput: {source}, batch {args.batch_size}, {args.batches} timed batches "
        f"after {args.warmup} warm-up, {os.cpu_count()} CPU cores, TF {tf.__version__}",
        flush=True,
    )
    rows = run(args)

    sizes = list(dict.fromkeys(row[1] for row in rows))
    labels = list(dict.fromkeys(row[0] for row in rows))
    table = {(label, s): (r, cpu) for label, s, r, cpu in rows}
    cores = os.cpu_count() or 1
    width = max(len(label) for label in labels)
    head = " ".join(
        f"{f'{s} px img/s':>13} {'CPU ms/img':>10} {f'{cores}-core est':>10}" for s in sizes
    )
    print()
    print(f"{'':<{width}} {head}")
    print("-" * (width + 1 + 36 * len(sizes)))
    for label in labels:
        cells = []
        for s in sizes:
            r, cpu = table[(label, s)]
            cells.append(f"{r:13.0f} {cpu:10.2f} {cores * 1e3 / cpu:10.0f}")
        print(f"{label:<{width}} " + " ".join(cells))
    print(
        f"\n{cores}-core est = {cores} cores x 1000 / (CPU ms per image): the rate on an idle "
        "machine if the pipeline kept every core busy."
    )
    mixture_label = next(label for label in labels if label.startswith("inpaint, mixture ("))
    for s in sizes:
        (r, cpu), (rn, cpun) = table[(mixture_label, s)], table[(NAIVE_LABEL, s)]
        print(f"{s} px: ours / naive = {r / rn:.2f}x (img/s), {cpun / cpu:.2f}x (CPU ms/img)")


if __name__ == "__main__":
    main()
