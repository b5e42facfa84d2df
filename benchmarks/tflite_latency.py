"""Float vs dynamic-range vs full-int8 latency of the default presets, in one run.

    python -m benchmarks.tflite_latency                      # vnet, pix2pix, srgan
    python -m benchmarks.tflite_latency --archs srgan --runs 20 --profile always

For each architecture the default preset's generator is built at the sizes apps
use (vnet 256 px, pix2pix 256 px, srgan ×4 from 64 to 256 px) with untrained
weights (latency does not depend on them), converted by :func:`tfface.export.quantize.converter_for`
to float, dynamic-range and full-int8 (calibrated on ``--samples`` inputs of the
architecture's own training pipeline, the built-in synthetic source unless
``--data-dir`` is given), and timed in LiteRT at ``--threads`` threads with the
XNNPACK delegate: p50/p90 after warm-up. The files of one architecture are timed
in interleaved rounds, so a load change on a shared machine hits every mode alike.

Printed per file: size, the number of XNNPACK partitions (1: the whole graph runs
in XNNPACK; more: ops fall back to LiteRT's built-in kernels and split the graph)
and the speed-up over float. Where int8 is less than 2× faster than float, or
dynamic-range is slower than float, the per-op profile of the files is printed
(:func:`tfface.export.harness.op_profile`: each op cut out and timed alone), slowest op
types first, with the ops XNNPACK leaves to the built-in kernels.

Models with PReLU (SRGAN) also get ``int8+leakyform``: the same weights with each
PReLU written as :class:`tfface.models.layers.LeakyFormPReLU`, which XNNPACK runs
in int8 (XNNPACK has no int8 PRELU).

The machine's load average is printed at the start and the end: on a shared
machine absolute times are inflated, ratios between modes much less so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Sequence

import numpy as np

import tfface  # noqa: F401
import tensorflow as tf

from tfface import keras
from tfface.config import resolve
from tfface.models import get_arch
from tfface.models.layers import xnnpack_int8_form
from tfface.rundir import generator_inputs
from pipelines.evaluate import method_names
from tfface.export.harness import delegate_partitions, op_profile, profile_by_op_type
from tfface.export.metadata import op_inventory
from tfface.export.quantize import QuantizationConfig, converter_for, representative_from
from tfface.lite import fill_inputs, interpreter_for

ARCH_OVERRIDES: dict[str, dict[str, Any] | None] = {
    "vnet": None,                                # paper preset: 256 px
    "pix2pix": None,                             # paper preset: 256 px
    "srgan": {"data": {"image_size": 256}},      # x4: 64 -> 256 px
}
GOAL_INT8_SPEEDUP = 2.0


def build(arch: str, data_dir: str | None = None):
    cfg = resolve(arch, None, ARCH_OVERRIDES.get(arch))
    if data_dir:
        cfg.data.source, cfg.data.data_dir = "folder", data_dir
    keras.utils.set_random_seed(0)
    return cfg, get_arch(arch).build_generator(cfg)


def calibration_inputs(cfg, n: int) -> list[list[np.ndarray]]:
    """``n`` generator inputs from the training pipeline (identically preprocessed)."""
    from tfface.data.pipeline import make_dataset

    keys = generator_inputs(cfg)
    return [[b[k].numpy() for k in keys] for b in make_dataset(cfg, "train", batch_size=1).take(n)]


def convert(model, mode: str, rep=None) -> bytes:
    qcfg = (QuantizationConfig.for_int8(calibration_samples=len(rep)) if mode == "int8"
            else getattr(QuantizationConfig, f"for_{mode}")())
    data = representative_from(rep) if mode == "int8" else None
    return converter_for(model, qcfg, data).convert()


def time_files(files: dict[str, bytes], threads: int, runs: int, warmup: int,
               inputs: Sequence[np.ndarray], rounds: int = 4) -> dict[str, dict[str, float]]:
    """p50/p90 (ms) of each file, XNNPACK on, timed in ``rounds`` interleaved rounds on
    one real pipeline input (``inputs``: one batch per model input)."""
    its = {}
    for name, content in files.items():
        it = interpreter_for(content, threads, True)
        it.allocate_tensors()
        fill_inputs(it, inputs)
        for _ in range(warmup):
            it.invoke()
        its[name] = it
    times: dict[str, list[float]] = {k: [] for k in files}
    per_round = max(1, -(-runs // rounds))
    for _ in range(rounds):
        for name, it in its.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                it.invoke()
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {k: {"p50_ms": float(np.percentile(v, 50)), "p90_ms": float(np.percentile(v, 90)),
                "runs": len(v)} for k, v in times.items()}


def _print_profile(name: str, rows: list[dict], top: int) -> None:
    total = sum(r["ms"] for r in rows)
    print(f"    {name}: sum of single-op times {total:.1f} ms")
    for a in profile_by_op_type(rows)[:top]:
        fallback = (f"  <- {a['not_delegated']} not in XNNPACK (built-in kernel)"
                    if a["not_delegated"] else "")
        print(f"      {a['op']:<16}{a['dtype']:<8} x{a['count']:<3} {a['ms']:8.1f} ms "
              f"({100 * a['ms'] / max(total, 1e-9):4.1f} %){fallback}")


def bench_arch(arch: str, args) -> dict[str, Any]:
    t0 = time.time()
    cfg, gen = build(arch, args.data_dir)
    size = cfg.data.image_size
    shape = (f"x{cfg.data.scale}: {size // cfg.data.scale} -> {size} px" if cfg.data.task == "sr"
             else f"{size} px")
    print(f"\n== {arch} ({cfg.model.preset} preset, {shape}, {gen.count_params() / 1e6:.2f} M "
          f"parameters)", flush=True)
    rep = calibration_inputs(cfg, args.samples)
    files: dict[str, bytes] = {}
    for mode in ("float", "dynamic", "int8"):
        t = time.time()
        files[mode] = convert(gen, mode, rep)
        print(f"  converted {mode:<8} in {time.time() - t:5.0f} s", flush=True)
    fixed = xnnpack_int8_form(gen)
    if fixed is not gen:
        t = time.time()
        files["int8+leakyform"] = convert(fixed, "int8", rep)
        print(f"  converted int8+leakyform in {time.time() - t:5.0f} s", flush=True)
    if args.keep_dir:
        os.makedirs(args.keep_dir, exist_ok=True)
        for k, c in files.items():
            name = f"{arch}_{k.replace('+', '_')}.tflite"
            with open(os.path.join(args.keep_dir, name), "wb") as f:
                f.write(c)
    lat = time_files(files, args.threads, args.runs, args.warmup, rep[0])
    builtin = {}
    if args.without_xnnpack:
        for k, c in files.items():
            it = interpreter_for(c, args.threads, False)
            it.allocate_tensors()
            fill_inputs(it, rep[0])
            it.invoke()
            ts = []
            for _ in range(args.without_xnnpack):
                t = time.perf_counter()
                it.invoke()
                ts.append((time.perf_counter() - t) * 1e3)
            builtin[k] = float(np.median(ts))
    out: dict[str, Any] = {"arch": arch, "preset": cfg.model.preset, "size": shape,
                           "parameters": int(gen.count_params()), "files": {}}
    base = lat["float"]["p50_ms"]
    print(f"  {'file':<16}{'size MB':>8}{'parts':>6}{'int8 ops':>9}{'p50 ms':>10}{'p90 ms':>10}"
          f"{'vs float':>10}" + (f"{'no XNNPACK ms':>15}" if builtin else ""))
    for k, c in files.items():
        inv = op_inventory(c)
        parts = delegate_partitions(c, args.threads)
        row = {**lat[k], "size_mb": len(c) / 1e6, "partitions": parts,
               "integer_ops": inv["integer_ops"], "compute_ops": inv["compute_ops"],
               "speedup_vs_float": base / lat[k]["p50_ms"]}
        if builtin:
            row["without_xnnpack_ms"] = builtin[k]
        out["files"][k] = row
        print(f"  {k:<16}{row['size_mb']:8.2f}{parts:6d}"
              f"{inv['integer_ops']:>5}/{inv['compute_ops']:<3}{row['p50_ms']:10.1f}"
              f"{row['p90_ms']:10.1f}{row['speedup_vs_float']:9.2f}x"
              + (f"{builtin[k]:15.1f}" if builtin else ""))
    best_int8 = max((v["speedup_vs_float"], k) for k, v in out["files"].items()
                    if k.startswith("int8"))
    dyn_slower = out["files"]["dynamic"]["speedup_vs_float"] < 1.0
    out["int8_goal_met"] = best_int8[0] >= GOAL_INT8_SPEEDUP
    out["best_int8"] = best_int8[1]
    out["dynamic_slower_than_float"] = dyn_slower
    weak = out["files"]["int8"]["speedup_vs_float"] < GOAL_INT8_SPEEDUP
    if args.profile == "always" or (args.profile == "auto" and (weak or dyn_slower)):
        print(f"  per-op profile ({args.threads} threads, XNNPACK; each op timed alone):")
        out["profile"] = {}
        for k, c in files.items():
            rows = op_profile(c, threads=args.threads, runs=args.profile_runs)
            out["profile"][k] = profile_by_op_type(rows)
            _print_profile(k, rows, args.top)
    out["seconds"] = time.time() - t0
    return out


def bench_files(paths: Sequence[str], args) -> dict[str, Any]:
    """Time existing ``.tflite`` files (e.g. a run's int8 and fp16 files) in interleaved
    rounds, XNNPACK on, on random in-range inputs (latency does not depend on them)."""
    files = {}
    # Two files with one name (vnet/model_int8_mixed, unmask/model_int8_mixed) get as
    # many parent folders as tell them apart, as in pipelines.evaluate's rows.
    for p, name in zip(paths, method_names(paths)):
        with open(p, "rb") as f:
            files[name + ".tflite"] = f.read()
    lat = time_files(files, args.threads, args.runs, args.warmup, None)
    base = next((lat[k]["p50_ms"] for k in lat if "float" in k and "fp16" not in k), None)
    print(f"  {'file':<34}{'size MB':>8}{'parts':>6}{'int8 ops':>10}{'p50 ms':>10}{'p90 ms':>10}"
          + (f"{'vs float':>10}" if base else ""))
    out: dict[str, Any] = {"files": {}}
    for k, c in files.items():
        inv = op_inventory(c)
        row = {**lat[k], "size_mb": len(c) / 1e6,
               "partitions": delegate_partitions(c, args.threads),
               "integer_ops": inv["integer_ops"], "compute_ops": inv["compute_ops"]}
        out["files"][k] = row
        print(f"  {k:<34}{row['size_mb']:8.2f}{row['partitions']:6d}"
              f"{inv['integer_ops']:>6}/{inv['compute_ops']:<3}{row['p50_ms']:10.2f}"
              f"{row['p90_ms']:10.2f}" + (f"{base / row['p50_ms']:9.2f}x" if base else ""))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.tflite_latency",
        description="Float vs dynamic-range vs int8 LiteRT latency of the default presets.")
    p.add_argument("--archs", nargs="+", default=list(ARCH_OVERRIDES), choices=list(ARCH_OVERRIDES))
    p.add_argument("--files", nargs="+", metavar="FILE.tflite",
                   help="instead of building the presets: time these existing files (e.g. "
                   "runs/demo/model_int8_mixed.tflite runs/demo/model_fp16.tflite), interleaved")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=12, help="timed invocations per file (default 12)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--samples", type=int, default=32,
                   help="int8 calibration samples from the pipeline (default 32: the files are "
                   "only timed, and latency does not depend on the calibrated ranges; shipped "
                   "files use at least 100)")
    p.add_argument("--without-xnnpack", type=int, default=0, metavar="RUNS",
                   help="also time each file RUNS times with LiteRT's built-in kernels only "
                   "(what an app that turns the default delegate off gets; slow)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="calibrate on a folder of faces instead of the synthetic source")
    p.add_argument("--profile", choices=["auto", "always", "never"], default="auto",
                   help="per-op profile: when int8 < 2x or dynamic < float (auto), always, never")
    p.add_argument("--profile-runs", type=int, default=3)
    p.add_argument("--top", type=int, default=6, help="op types shown per profile")
    p.add_argument("--keep-dir", metavar="DIR", help="also write the .tflite files here")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tf.get_logger().setLevel("ERROR")
    load0 = os.getloadavg()
    print(f"LiteRT latency, {args.threads} threads, XNNPACK on; {os.cpu_count()} CPUs, load "
          f"average {load0[0]:.1f} at start (a load above the CPU count inflates every time)")
    if args.files:
        res = bench_files(args.files, args)
        load1 = os.getloadavg()
        print(f"load average {load0[0]:.1f} -> {load1[0]:.1f}")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump({"threads": args.threads, "load_average": [load0[0], load1[0]],
                           **res}, fh, indent=2)
        return 0
    results = [bench_arch(a, args) for a in args.archs]
    load1 = os.getloadavg()
    print(f"\nSummary (p50 ms, {args.threads} threads, XNNPACK; load average {load0[0]:.1f} -> "
          f"{load1[0]:.1f}):")
    print(f"  {'arch':<9}{'float':>9}{'dynamic':>9}{'int8':>9}{'int8 fix':>10}{'int8 x':>8}"
          f"{'dyn x':>7}  verdict")
    for r in results:
        f = r["files"]
        fix = f.get("int8+leakyform")
        best = f[r["best_int8"]]["speedup_vs_float"]
        verdict = ("int8 >= 2x" if r["int8_goal_met"] else "int8 < 2x")
        if r["best_int8"] != "int8":
            verdict += f" with {r['best_int8']}"
        if r["dynamic_slower_than_float"]:
            verdict += "; dynamic SLOWER than float: do not ship dynamic for it"
        fix_ms = "-" if fix is None else format(fix["p50_ms"], ".1f")
        print(f"  {r['arch']:<9}{f['float']['p50_ms']:9.1f}{f['dynamic']['p50_ms']:9.1f}"
              f"{f['int8']['p50_ms']:9.1f}{fix_ms:>10}"
              f"{best:7.2f}x{f['dynamic']['speedup_vs_float']:6.2f}x  {verdict}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"threads": args.threads, "load_average": [load0[0], load1[0]],
                       "cpus": os.cpu_count(), "samples": args.samples, "results": results},
                      fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
