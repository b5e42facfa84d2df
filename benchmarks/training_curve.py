"""Validation PSNR over the classical baseline against CPU-minutes of training.

    python -m benchmarks.training_curve runs/vnet-mobile runs/srgan-mobile \\
        --out docs/img/quality_per_cpu_minute.png

For each run directory: the ``val_psnr`` of every epoch in its metrics.csv (the
model the run validates: the EMA generator when the run keeps one) against the
run's ``cpu_minutes`` (user + system CPU time of the training process, validation
included), minus the PSNR of the classical baseline on the same validation faces
(OpenCV Navier–Stokes given the true mask for inpainting runs, bicubic upsampling
for super-resolution runs), computed here once per run. Step 0 is the run's
architecture with fresh weights (for a residual over ``HoleFill`` or
``BicubicUpsample``: that classical start); a fine-tuning run (``--init-weights``)
starts from the weights it names and is drawn on from the CPU-minutes and steps of the
run it started from, when that run directory is there. Prints the table and writes
one chart with a line per run: what more training buys per CPU-minute.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from typing import Sequence

import numpy as np

import tfface  # noqa: F401
from tfface.rundir import generator_inputs


def baseline_psnr(run_dir: str) -> tuple[str, float, float]:
    """(name, mean PSNR) of the run's classical baseline on its validation split, and
    the PSNR of the run's model before training (its architecture, fresh weights:
    for a residual over a fill or an upsampling, that fill)."""
    from tfface import keras
    from tfface.config import Config
    from tfface.evaluation import bicubic, eval_batches, evaluate, opencv_inpaint
    from tfface.models import get_arch

    cfg = Config.load(os.path.join(run_dir, "config.json"))
    batches = eval_batches(cfg, cfg.data.eval_count)
    if cfg.data.task == "sr":
        name, fn = "bicubic", bicubic
    else:
        name, fn = "opencv_ns", opencv_inpaint("ns")
    keras.utils.set_random_seed(cfg.data.seed)
    gen = get_arch(cfg.model.arch).build_generator(cfg)
    if cfg.train.init_weights:  # a fine-tuning run starts from the weights it names
        from tfface.rundir import load_init_weights

        load_init_weights(gen, cfg)
    keys = generator_inputs(cfg)

    def fresh(b):
        xs = [b[k] for k in keys]
        return gen.predict(xs[0] if len(xs) == 1 else xs, verbose=0)

    res = evaluate({name: fn, "untrained": fresh}, batches, baselines=False)
    return name, res[name]["overall"]["psnr"], res["untrained"]["overall"]["psnr"]


def read_curve(run_dir: str) -> tuple[list[float], list[float], list[int]]:
    """(cpu_minutes, val_psnr, step) of each epoch row of the run's metrics.csv."""
    path = os.path.join(run_dir, "metrics.csv")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "cpu_minutes" not in rows[0]:
        raise ValueError(f"{path} has no cpu_minutes column (a run made before it was logged)")
    keep = [r for r in rows if r.get("val_psnr") not in (None, "")]
    return ([float(r["cpu_minutes"]) for r in keep], [float(r["val_psnr"]) for r in keep],
            [int(float(r["step"])) for r in keep])


def started_from(run_dir: str) -> tuple[str, float, int] | None:
    """(run directory, CPU-minutes, steps) of the run a fine-tuning run started from
    (``train.init_weights``), when that run's metrics.csv is there; None otherwise."""
    from tfface.config import Config

    init = Config.load(os.path.join(run_dir, "config.json")).train.init_weights
    if not init:
        return None
    source = init if os.path.isdir(init) else os.path.dirname(init)
    try:
        cpu, _, steps = read_curve(source)
    except (OSError, ValueError, KeyError):
        return None
    return source, cpu[-1], steps[-1]


def parse_points(text: str) -> tuple[list[float], list[float]]:
    """``"191:1.35,295.5:1.57"`` -> CPU-minutes and gains, starting at (0, 0) unless the first
    point is at CPU-minute 0 already (a fine-tune's start, whose gain is the earlier stage's)."""
    try:
        pts = [tuple(float(v) for v in pt.split(":")) for pt in text.split(",")]
    except ValueError:
        pts = []
    if not pts or any(len(pt) != 2 for pt in pts):
        raise ValueError(f"points must read CPU:GAIN,CPU:GAIN (got {text!r})")
    if pts[0][0] != 0.0:
        pts.insert(0, (0.0, 0.0))
    return [c for c, _ in pts], [g for _, g in pts]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.training_curve",
        description="Validation PSNR over OpenCV NS / bicubic against CPU-minutes of training.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="quality_per_cpu_minute.png", help="chart PNG to write")
    p.add_argument("--recorded", nargs=2, metavar=("LABEL", "CPU:GAIN,..."),
                   help="also draw figures recorded elsewhere (runs whose directories are not "
                        "kept), e.g. --recorded 'shipped SR, stage ends' 191:1.35,295.5:1.57")
    args = p.parse_args(argv)
    recorded = None
    if args.recorded:
        try:
            recorded = (args.recorded[0], parse_points(args.recorded[1]))
        except ValueError as e:
            p.error(f"--recorded: {e}")
    from tfface.figures import line_chart

    series = {}
    for run in args.runs:
        try:
            cpu, val, steps = read_curve(run)
        except (OSError, ValueError, KeyError) as e:
            print(f"error: {run}: {e}", file=sys.stderr)
            return 2
        name, base, fresh = baseline_psnr(run)
        cpu, val, steps = [0.0] + cpu, [fresh] + val, [0] + steps
        gain = [v - base for v in val]
        label = f"{os.path.basename(os.path.normpath(run))} (vs {name} {base:.2f} dB)"
        start = "the untrained model"
        parent = started_from(run)
        if parent is not None:  # counted on from the run it fine-tunes
            source, cpu0, step0 = parent
            cpu, steps = [c + cpu0 for c in cpu], [s + step0 for s in steps]
            start = f"{os.path.basename(os.path.normpath(source))}'s weights"
            label += f", fine-tuned from {os.path.basename(os.path.normpath(source))}"
        series[label] = (cpu, gain)
        print(f"\n{label}; first row: {start}")
        print(f"  {'step':>6}{'CPU min':>9}{'val PSNR':>10}{'over ' + name:>16}")
        for c, v, g, s in zip(cpu, val, gain, steps):
            print(f"  {s:6d}{c:9.1f}{v:10.2f}{g:+16.2f}")
    if recorded is not None:
        label, (cpu, gain) = recorded[0] + " (recorded)", recorded[1]
        series[label] = (cpu, gain)
        print(f"\n{label}")
        for c, g in zip(cpu, gain):
            print(f"  {c:9.1f} CPU min {g:+8.2f} dB")
    line_chart(series, args.out, "CPU-minutes of training (process user + system)",
               "validation PSNR over baseline (dB)",
               "Quality per CPU-minute (validation split of the run)", hline=0.0)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
