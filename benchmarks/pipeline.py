"""Throughput of the data pipeline: images per second of training-pair synthesis.

Prints, per image size, the rate of the full default inpainting mixture, of each
occlusion generator alone, of the super-resolution task, and the decode-only ceiling
(the source alone: read/decode/resize or render, no synthesis). Batches of 32 after
a warm-up, as in training.

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

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tfface  # noqa: E402,F401  (before tensorflow: selects tf_keras)
import tensorflow as tf  # noqa: E402

from tfface.config import Config, DataConfig  # noqa: E402
from tfface.data import occlusion as occ  # noqa: E402
from tfface.data.pipeline import make_dataset  # noqa: E402
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


def _config(args, size: int, **data) -> Config:
    cfg = Config()
    if args.data_dir:
        cfg.data.source, cfg.data.data_dir = "folder", args.data_dir
    cfg.data.image_size = size
    cfg.data.seed = args.seed
    for k, v in data.items():
        setattr(cfg.data, k, v)
    cfg.train.batch_size = args.batch_size
    return cfg


def run(args) -> list[tuple[str, int, float, float]]:
    rows = []
    default_mixture = DataConfig().occlusions
    for size in args.sizes:
        cases: list[tuple[str, Config | None]] = [("decode only (source)", None)]
        mix = " + ".join(f"{k} {v:g}" for k, v in default_mixture.items())
        cases.append((f"inpaint, mixture ({mix})", _config(args, size)))
        for name in sorted(occ.OCCLUSIONS):
            cases.append((f"inpaint, {name} only", _config(args, size, occlusions={name: 1.0})))
        cases.append((f"sr x{args.scale} (area)", _config(args, size, task="sr", scale=args.scale)))
        for label, cfg in cases:
            if cfg is None:
                src_cfg = _config(args, size)
                ds = make_source(src_cfg.data).dataset("train")
                ds = ds.batch(args.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
            else:
                ds = make_dataset(cfg, "train")
            r, cpu = _rate(ds, args.batches, args.warmup, args.batch_size)
            rows.append((label, size, r, cpu))
            print(f"  {size:>4} px  {label:<46} {r:7.0f} img/s  {cpu:6.2f} CPU ms/img", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data-dir", default=None, help="folder of face photos (default: synthetic faces)"
    )
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


if __name__ == "__main__":
    main()
