"""Compare the inpainting families on one eval split after one training budget.

Trains each architecture's ``demo`` preset for the same number of steps and batch size
on the same faces and occlusion mixture, then scores the Keras model and its full-int8
file on the same eval split (PSNR, SSIM, hole PSNR per occlusion generator; 8-bit RGB
as in :mod:`tfface.metrics`), with parameters, int8 size, int8 fidelity to Keras and
LiteRT latency. ``unmask`` also reports its segmentation (pixel accuracy, IoU).

    PYTHONPATH=. python benchmarks/compare_archs.py --data-dir ~/faces --steps 300 \
        --out runs/compare

Runs are resumable (an existing finished run directory is reused). Prints a Markdown
table and writes ``compare.json`` into ``--out``. Figures, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import tfface  # noqa: F401
from tfface.rundir import load_generator

ARCHS = ("vnet", "pix2pix", "wgan_gl", "unmask")
OCCLUSIONS = ("celeba_c", "facemask")


def config_for(arch: str, args):
    from tfface.config import resolve

    data = {"image_size": args.size, "eval_count": args.eval_count,
            "occlusions": {k: 1.0 for k in OCCLUSIONS},
            "eval_occlusions": {k: 1.0 for k in OCCLUSIONS}}
    if args.data_dir:
        data.update(source="folder", data_dir=args.data_dir)
    half = max(1, args.steps // 2)
    train = {"batch_size": args.batch_size, "epochs": 2, "steps_per_epoch": half,
             "save_every_steps": half}
    return resolve(arch, "demo", {"data": data, "train": train})


def mask_metrics(gen, batches) -> dict[str, float]:
    from tfface.data.occlusion import OCCLUSION_IDS
    from tfface.models.unmask import stage_model
    from tfface.metrics import mask_scores

    names = {v: k for k, v in OCCLUSION_IDS.items()}
    stages = stage_model(gen)
    acc, iou, occ = [], [], []
    for b in batches:
        prob = stages(b["occluded"], training=False)[0]
        a, i = mask_scores(b["mask"], prob)
        acc += list(a.numpy())
        iou += list(i.numpy())
        occ += list(b["occlusion"])
    out = {"mask_acc": float(np.mean(acc)), "mask_iou": float(np.mean(iou))}
    for o in sorted(set(occ)):
        sel = np.array(occ) == o
        out[f"mask_acc_{names[o]}"] = float(np.mean(np.array(acc)[sel]))
        out[f"mask_iou_{names[o]}"] = float(np.mean(np.array(iou)[sel]))
    return out


def measure(arch: str, args) -> dict:
    from tfface.evaluation import eval_batches, evaluate
    from tfface.train import run
    from tfface.export.convert import convert_model, fidelity_batch
    from tfface.export.harness import measure_latency
    from tfface.lite import LiteRunner
    from tfface.export.quantize import QuantizationConfig

    cfg = config_for(arch, args)
    run_dir = os.path.join(args.out, arch)
    t0 = time.time()
    result = run(cfg, run_dir, progress=False)
    train_s = time.time() - t0
    cfg, gen = load_generator(run_dir, "last")
    batches = eval_batches(cfg, args.eval_count)
    conv = convert_model(gen, cfg, QuantizationConfig.for_int8(calibration_samples=100),
                         run_dir, check_batch=fidelity_batch(cfg))
    lite = LiteRunner(conv.path)

    def keras_fn(b):
        return gen.predict(b["occluded"], verbose=0)

    scores = evaluate({"keras": keras_fn, "int8": lambda b: lite.run_named(b)}, batches,
                      baselines=args.baselines)
    lat = measure_latency(conv.path, threads=(args.threads,), xnnpack=(True,), runs=30)[0]
    row = {"arch": arch, "steps": result.step, "batch_size": cfg.train.batch_size,
           "train_seconds": round(train_s, 1), "params": int(gen.count_params()),
           "int8_bytes": conv.card["size_bytes"],
           "int8_fidelity_db": conv.card["fidelity"]["psnr_db_vs_keras"],
           "latency_ms_p50": round(lat["p50_ms"], 2), "latency_threads": args.threads,
           "scores": scores}
    if arch == "unmask":
        row.update(mask_metrics(gen, batches))
    return row


def table(rows: list[dict]) -> str:
    def cell(r, who, occ, key):
        return r["scores"][who]["by_occlusion"].get(occ, {}).get(key)

    head = ("| model | params | int8 size | int8 fidelity | latency p50 | "
            + " | ".join(f"{o} PSNR / SSIM / hole PSNR" for o in OCCLUSIONS) + " |")
    lines = [head, "|" + "---|" * (5 + len(OCCLUSIONS))]
    for r in rows:
        for who in ("keras", "int8"):
            occ_cells = []
            for o in OCCLUSIONS:
                p, s, h = (cell(r, who, o, k) for k in ("psnr", "ssim", "hole_psnr"))
                occ_cells.append(f"{p:.2f} / {s:.4f} / {h:.2f}")
            name = r["arch"] + ("" if who == "keras" else " (int8)")
            size = f"{r['int8_bytes'] / 1e6:.2f} MB" if who == "int8" else ""
            fid = f"{r['int8_fidelity_db']:.1f} dB" if who == "int8" else ""
            lat = f"{r['latency_ms_p50']:.2f} ms" if who == "int8" else ""
            lines.append(f"| {name} | {r['params']:,} | {size} | {fid} | {lat} | "
                         + " | ".join(occ_cells) + " |")
    base = rows[0]["scores"]
    for b in ("input", "opencv_ns"):
        if b in base:
            occ_cells = []
            for o in OCCLUSIONS:
                v = base[b]["by_occlusion"][o]
                occ_cells.append(f"{v['psnr']:.2f} / {v['ssim']:.4f} / {v['hole_psnr']:.2f}")
            lines.append(f"| {b} (baseline) | | | | | " + " | ".join(occ_cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", nargs="+", default=list(ARCHS))
    p.add_argument("--data-dir", help="folder of face photos (default: synthetic faces)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--eval-count", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--no-baselines", dest="baselines", action="store_false")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for arch in args.archs:
        print(f"== {arch}", flush=True)
        rows.append(measure(arch, args))
        args.baselines = False  # once is enough: same inputs for every model
        with open(os.path.join(args.out, "compare.json"), "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)
    print(table(rows))
    for r in rows:
        extra = {k: round(v, 4) for k, v in r.items() if k.startswith("mask_")}
        print(f"{r['arch']}: {r['steps']} steps x batch {r['batch_size']} in "
              f"{r['train_seconds']:.0f} s {extra or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
