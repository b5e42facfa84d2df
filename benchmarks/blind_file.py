"""The blind file that decides its own hole, next to the old blind file and the two-file path.

    PYTHONPATH=$PWD python benchmarks/blind_file.py \\
        [--new android_demo_assets/blind/model_int8_mixed.tflite] \\
        [--old android_demo_assets/unmask/model_int8_mixed.tflite] \\
        [--faces ../shared/data/faces-dev ../shared/data/faces-hq/dev --images 96]

Faces of each held-out folder (people never trained on) with occluders no model trained
on (``realmask_unseen``, ``hand_unseen``; :data:`tfface.data.occlusion.HELD_OUT`), scored
by ``tfface.evaluation.evaluate`` (PSNR/SSIM, inside the true hole, hole sharpness, the
remnant of the occluder and the clean pixels changed) for:

- ``new_blind``: the one-graph file (its own segmenter decides the hole);
- ``old_blind``: the old blind file (``unmask``);
- ``two_file``: the shipped segmenter file, the face-ellipse clip, ``p > 0.5`` and the
  pixels above 0.1 connected to it, grown by 2 px, then the shipped 128 px V-Net file, as
  tfface-restore runs them on a face whose
  crop is at most 128 px (or with ``--look fidelity``);
- ``opencv_ns``: OpenCV Navier-Stokes **given the true mask**; ``input``: untouched.

Then the same undamaged faces through each method (PSNR against the input: a blind file
must leave a clean face alone), how far the one-graph file is from the two-file path (PSNR
between their outputs, share of pixels whose hole decision differs), and with
``--latency`` the p50 of each file at 2 threads with XNNPACK and its delegate partitions,
all timed in this one run.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import tfface  # noqa: F401

SHOWN = ("psnr", "ssim", "hole_psnr", "hole_ssim", "hole_sharpness", "hole_remnant",
         "clean_changed")


def two_file_path(segmenter: str, vnet: str):
    """``fn(batch) -> (restored, hole)``: segmenter file, clip, threshold, grow, V-Net file."""
    from tfface.faces.align import hole_weight
    from tfface.segmenter.infer import OccluderSegmenter
    from tfface.imageio import to_uint8
    from tfface.lite import LiteRunner

    # tfface-restore's found hole: p > 0.5 and the pixels above 0.1 connected to it
    # (OccluderSegmenter.hole_from); the blind file's graph reaches 8 px of that edge
    seg = OccluderSegmenter(segmenter)
    runner = LiteRunner(vnet)

    def run(x):
        holes = np.stack([hole_weight(seg.hole(to_uint8(f)), 2, 0) > 0.5 for f in x])
        m = holes[..., None].astype(np.float32)
        return runner.run_named({"occluded": x, "mask": m}), m

    return run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--new", default="android_demo_assets/blind/model_int8_mixed.tflite")
    p.add_argument("--old", default="android_demo_assets/unmask/model_int8_mixed.tflite")
    p.add_argument("--segmenter", default="android_demo_assets/segmenter/segmenter_int8.tflite")
    p.add_argument("--vnet", default="android_demo_assets/vnet/model_int8_mixed.tflite")
    p.add_argument("--run", default="android_demo_assets/vnet/keras",
                   help="run whose data config draws the eval faces (the V-Net's)")
    p.add_argument("--faces", nargs="+",
                   default=["../shared/data/faces-dev", "../shared/data/faces-hq/dev"])
    p.add_argument("--occlusions", nargs="+", default=["realmask_unseen", "hand_unseen"])
    p.add_argument("--images", type=int, default=96, help="faces per folder (0: no scores)")
    p.add_argument("--latency", action="store_true", help="also time the files (2 threads)")
    p.add_argument("--runs", type=int, default=60)
    args = p.parse_args(argv)

    from tfface.data.sources import FolderSource
    from tfface.evaluation import eval_batches, evaluate
    from tfface.export.blind import run_blind
    from tfface.lite import LiteRunner
    from tfface.rundir import load_run_config

    for f in (args.new, args.old, args.segmenter, args.vnet):
        if not os.path.isfile(f):
            print(f"error: no such file: {f}", file=sys.stderr)
            return 2
    new, old = LiteRunner(args.new), LiteRunner(args.old)
    two = two_file_path(args.segmenter, args.vnet)
    for folder in args.faces if args.images > 0 else []:
        cfg, _ = load_run_config(args.run)
        cfg.data.source, cfg.data.data_dir = "folder", folder
        cfg.data.eval_occlusions = {o: 1.0 for o in args.occlusions}
        cfg.data.eval_count = args.images
        batches = eval_batches(cfg, args.images, source=FolderSource(cfg.data, held_out=True))
        kept: dict[str, list] = {"new": [], "new_hole": [], "two": [], "two_hole": []}

        def new_fn(b):
            y, h = run_blind(new, b["occluded"])
            kept["new"].append(y)
            kept["new_hole"].append(h)
            return y

        def two_fn(b):
            y, h = two(b["occluded"])
            kept["two"].append(y)
            kept["two_hole"].append(h)
            return y

        res = evaluate({"new_blind": new_fn, "old_blind": old.run_named, "two_file": two_fn},
                       batches)
        n = sum(len(b["clean"]) for b in batches)
        print(f"\n## {folder}: {n} faces, occluders {', '.join(args.occlusions)} (held out)")
        order = ["new_blind", "two_file", "old_blind", "opencv_ns", "input"]
        keys = [None] + sorted(res["new_blind"]["by_occlusion"])
        for key in keys:
            print(f"\n{key or 'all'}")
            print("| method | " + " | ".join(SHOWN) + " |")
            print("|---" * (len(SHOWN) + 1) + "|")
            for name in order:
                row = res[name]["overall"] if key is None else res[name]["by_occlusion"][key]
                vals = ["-" if row.get(m) is None else
                        (f"{100 * row[m]:.2f} %" if m in ("hole_remnant", "clean_changed")
                         else f"{row[m]:.4g}") for m in SHOWN]
                print(f"| {name} | " + " | ".join(vals) + " |")
        clean = np.concatenate([x["clean"] for x in batches])
        print(f"\nclean faces (no occluder) through each method, {len(clean)} faces: PSNR vs the "
              "input / faces with any pixel changed by > 12 levels / pixels changed")
        for name, fn in (("new_blind", lambda x: run_blind(new, x)[0]),
                         ("two_file", lambda x: two(x)[0]), ("old_blind", old)):
            y = np.concatenate([fn(clean[i:i + 8]) for i in range(0, len(clean), 8)])
            q = np.abs(np.round((y + 1) * 127.5) - np.round((clean + 1) * 127.5))
            mse = float(np.mean(q ** 2))
            moved = np.any(q > 12, axis=-1)
            faces = int(moved.any(axis=(1, 2)).sum())
            print(f"| {name} | {10 * np.log10(255 ** 2 / max(mse, 1e-12)):.2f} dB | "
                  f"{faces}/{len(clean)} | {100 * moved.mean():.3f} % |")
        a, b = np.concatenate(kept["new"]), np.concatenate(kept["two"])
        qa = np.clip(np.round((a + 1) * 127.5), 0, 255)
        qb = np.clip(np.round((b + 1) * 127.5), 0, 255)
        mse = float(np.mean((qa - qb) ** 2))
        ha, hb = np.concatenate(kept["new_hole"]) > 0.5, np.concatenate(kept["two_hole"]) > 0.5
        inter, union = (ha & hb).sum(), (ha | hb).sum()
        occ = np.concatenate([x["occluded"] for x in batches])
        outside = ~ha[..., 0]
        same = np.all(a == occ, axis=-1)[outside]
        print(f"\none graph vs two files: PSNR {10 * np.log10(255 ** 2 / max(mse, 1e-12)):.2f} dB "
              f"between outputs, mean |diff| {np.mean(np.abs(qa - qb)):.3f} levels, max "
              f"{int(np.max(np.abs(qa - qb)))}; hole decisions differ on "
              f"{100 * np.mean(ha != hb):.3f} % of pixels (IoU {inter / max(union, 1):.4f}); "
              f"pixels outside the file's hole equal to the input: {100 * same.mean():.2f} %")
    if args.latency:
        from tfface.export.harness import delegate_partitions, measure_latency

        print(f"\nlatency at 2 threads, XNNPACK, {args.runs} runs, load "
              f"{os.getloadavg()[0]:.1f} (1-min average at the start)")
        for rnd in (1, 2):  # twice, interleaved: a load change shows as a disagreement
            for name, f in (("new_blind", args.new), ("old_blind", args.old),
                            ("segmenter", args.segmenter), ("vnet", args.vnet)):
                r = measure_latency(f, threads=(2,), xnnpack=(True,), runs=args.runs)[0]
                print(f"round {rnd} {name}: p50 {r['p50_ms']:.2f} ms, p90 {r['p90_ms']:.2f} ms, "
                      f"partitions {delegate_partitions(f)}")
        print(f"load at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
