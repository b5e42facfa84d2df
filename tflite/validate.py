"""Validate ``.tflite`` files before an app loads them.

Examples::

    python -m tflite.validate runs/demo/model_int8.tflite --run runs/demo
    python -m tflite.validate runs/demo/model_*.tflite --run runs/demo --min-fidelity-db 35 \
        --max-latency-ms 20
    python -m tflite.validate model_int8.tflite --run runs/demo --data-dir ~/faces --images 200

For each file: fidelity to the Keras model of the run given with ``--run`` (PSNR and
max abs error on the eval split; a path written in the file's card is never opened on
its own), quality against ground truth (PSNR/SSIM/MS-SSIM/L1 and inside the
hole, per occlusion generator and hole-area bin, next to the damaged input and
OpenCV inpainting given the true mask; for super-resolution PSNR/SSIM on RGB and on
the luma Y with a ``scale``-pixel border crop, per degradation, next to bicubic
upsampling and the nearest-upsampled input), latency (p50/p90 for 1, 2 and 4 threads,
with and without XNNPACK), the process's peak memory, and the graph inventory (ops,
how many run in int8, float fallbacks, minimum runtime version, and how many
partitions XNNPACK splits the graph into: more than one means some ops run in
LiteRT's slower built-in kernels). Several files
give one comparison table (markdown and JSON). Gates make the command exit 1 when
a file falls short, so CI and release scripts can rely on it.


The measurements are :mod:`tfface.export.validate`; this module parses the flags,
prints the table and sets the exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

import tfface  # noqa: F401

from tfface.cli import prog_name
from tfface.export.validate import (
    GATE_LATENCY_THREADS, comparison_table, gate_failures, validate_file, write_figures,
)
from tfface.fileio import atomic_write


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("tflite.validate", "tfface-validate"),
        description="Run .tflite files in the LiteRT interpreter and measure fidelity to the "
        "Keras model, quality against ground truth (next to OpenCV inpainting), latency and "
        "size. Exits 1 when a file misses a gate.",
        epilog="Writes into --out-dir DIR (default: the folder of the first file): "
        "validation.md and validation.json (one comparison table), validation_faces.png "
        "(the same faces restored by each file) and quality_vs_latency.png / "
        "quality_vs_size.png.",
    )
    p.add_argument("files", nargs="+", metavar="MODEL.tflite")
    p.add_argument("--run", metavar="RUN_DIR",
                   help="run directory of the Keras model (default: the folder of the file "
                   "when it is a run directory); the run named in the card is never opened on "
                   "its own")
    p.add_argument("--data-dir", metavar="DIR",
                   help="score on a folder of faces instead of the run's eval split")
    p.add_argument("--images", type=int, default=64, help="eval images to score (default 64)")
    p.add_argument("--degradations", nargs="+", metavar="NAME",
                   help="super-resolution: degradation presets whose LR inputs are scored "
                   "(none, classic, realesrgan; default: the run's own)")
    p.add_argument("--latency-runs", type=int, default=20,
                   help="timed invocations per setting after warm-up (default 20)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4],
                   help="thread counts to time (default 1 2 4)")
    p.add_argument("--min-fidelity-db", type=float,
                   help="fail when PSNR(tflite, keras) is below this")
    p.add_argument("--min-psnr", type=float,
                   help="fail when the file's PSNR against ground truth is below this")
    p.add_argument("--max-latency-ms", type=float,
                   help=f"fail when p50 latency ({GATE_LATENCY_THREADS} threads, XNNPACK) is above this")
    p.add_argument("--out-dir", metavar="DIR",
                   help="where validation.md/json go (default: beside the first file)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.images < 1:
        print("error: --images must be at least 1", file=sys.stderr)
        return 2
    if GATE_LATENCY_THREADS not in args.threads:
        args.threads = sorted({*args.threads, GATE_LATENCY_THREADS})
    reports, failed = [], False
    for path in args.files:
        print(f"Validating {path} ...", flush=True)
        try:
            rep = validate_file(path, run_dir=args.run, data_dir=args.data_dir,
                                images=args.images, latency_runs=args.latency_runs,
                                threads=tuple(args.threads), degradations=args.degradations)
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        rep["gate_failures"] = gate_failures(rep, args.min_fidelity_db, args.min_psnr,
                                             args.max_latency_ms)
        failed |= bool(rep["gate_failures"])
        reports.append(rep)
    table = comparison_table(reports)
    print()
    print(table)
    out_dir = args.out_dir or os.path.dirname(os.path.abspath(args.files[0]))
    os.makedirs(out_dir, exist_ok=True)
    written = write_figures(reports, out_dir)
    atomic_write(os.path.join(out_dir, "validation.md"),
                 table + "\n\n" + "".join(f"![{n}]({n})\n" for n in written))
    atomic_write(os.path.join(out_dir, "validation.json"),
                 json.dumps([{k: v for k, v in r.items() if not k.startswith("_")}
                             for r in reports], indent=2))
    print(f"\nWritten to {out_dir}: validation.md, validation.json, " + ", ".join(written))
    for r in reports:
        for reason in r["gate_failures"]:
            print(f"FAIL {os.path.basename(r['file'])}: {reason}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
