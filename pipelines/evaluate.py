"""Score a trained run on faces it never saw, next to classical baselines.

Examples::

    python -m pipelines.evaluate --run runs/demo
    python -m pipelines.evaluate --run runs/demo --data-dir ~/held_out_faces --images 500
    python -m pipelines.evaluate --run runs/demo --tflite runs/demo/model_int8.tflite \\
        --embedding arcface.tflite

    python -m pipelines.evaluate --run runs/srgan-demo --degradations none classic realesrgan

Writes report.md, report.json and PNGs (worst/median/best restorations, a bar chart
per metric) to --out (default RUN_DIR/eval). Inpainting runs: PSNR, SSIM, MS-SSIM,
L1, and PSNR/SSIM inside the hole, per occlusion generator and hole-area bin, for
the Keras model (raw, and composited into the hole), each .tflite file, the
untouched damaged input and OpenCV inpainting given the true mask (Telea,
Navier–Stokes, radius 3). Super-resolution runs: PSNR, SSIM, MS-SSIM and L1 on RGB
and PSNR/SSIM on the luma Y with a ``scale``-pixel border crop, per scale and
degradation, next to bicubic upsampling and the untouched input (nearest-neighbour
upsampled). With --embedding, face-verification TPR/FPR/accuracy of damaged and
restored faces. With --identity dlib, face verification against other photos of the
same person (the folder's IDENTITIES.csv): TPR at 1 % FPR and accuracy of clean,
damaged, OpenCV and restored faces (tfface.identity).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Collection, Sequence

import numpy as np

import tfface  # noqa: F401
from tfface.cards import file_sha256, load_card
from tfface.cli import prog_name
from tfface.data.occlusion import OCCLUSION_IDS
from tfface.data.sources import FolderSource
from tfface.evaluation import (REMNANT_KEYS, REMNANT_LEVELS, bicubic, eval_batches, evaluate,
                               face_recognition, nearest_input, opencv_inpaint, sr_eval_batches)
from tfface.figures import bar_chart, image_grid
from tfface.identity.verify import IdentityError, IdentityEval, load_embedder
from tfface.identity.verify import markdown as identity_markdown
from tfface.lite import LiteRunner
from tfface.rundir import generator_inputs, load_generator, weights_file, weights_source

METRICS_SHOWN = ("psnr", "ssim", "ms_ssim", "l1", "hole_psnr", "hole_ssim", "hole_sharpness")
SR_METRICS_SHOWN = ("psnr", "ssim", "ms_ssim", "l1", "psnr_y", "ssim_y", "sharpness")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("pipelines.evaluate", "tfface-evaluate"),
        description="Score a run's model (Keras, and any .tflite files) on held-out faces "
        "next to classical baselines (OpenCV inpainting, bicubic upsampling) and the damaged "
        "input; write report.md/json and figures.",
        epilog="Writes into RUN_DIR/eval/ (or --out DIR): report.md and report.json (every "
        "metric per method, occlusion generator and hole-area bin), worst_median_best.png "
        "(restorations by the model and the baselines) and bar_<metric>.png charts.",
    )
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory to evaluate")
    p.add_argument("--weights", choices=["best", "last"], default="best",
                   help="generator weights of the run (default: best)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="score on a folder of faces (its eval split) instead of the run's data")
    p.add_argument("--whole-folder", action="store_true",
                   help="with --data-dir: the folder is held out (the model never trained on "
                   "any of its faces, e.g. other people), so score its first --images faces "
                   "in a fixed order instead of its 10%% eval split")
    p.add_argument("--occlusions", nargs="+", metavar="NAME",
                   help="inpainting runs: occlusion generators of the eval faces, equal "
                   "weights (default: the run's eval mixture), e.g. celeba_c irregular")
    p.add_argument("--tflite", nargs="*", default=[], metavar="FILE",
                   help=".tflite files of the run to score alongside the Keras model")
    p.add_argument("--images", type=int, default=None,
                   help="number of eval faces (default: the run's whole eval split)")
    p.add_argument("--degradations", nargs="+", metavar="NAME",
                   help="super-resolution runs: degradation presets whose LR inputs are "
                   "scored (none, classic, realesrgan; default: the run's own)")
    p.add_argument("--embedding", metavar="MODEL",
                   help="face-embedding model as a .tflite file (e.g. an ArcFace or "
                   "MobileFaceNet export; Keras files are refused: they can carry code) for "
                   "the face-verification evaluation")
    p.add_argument("--identity", choices=["dlib"],
                   help="face verification of clean, damaged, OpenCV and restored faces "
                   "against other photos of the same person (needs --data-dir with an "
                   "identities file; pip install 'tfface[identity]')")
    p.add_argument("--identities", metavar="CSV",
                   help="with --identity: the file,person table of the photos (default: "
                   "IDENTITIES.csv in the data folder)")
    p.add_argument("--out", metavar="DIR", help="report folder (default: RUN_DIR/eval)")
    return p


def _table(summaries: dict[str, dict], section: str,
           shown: Sequence[str] = METRICS_SHOWN) -> str:
    lines = []
    keys = sorted({k for s in summaries.values() for k in s[section]}) if section != "overall" else [None]
    for key in keys:
        if key is not None:
            lines.append(f"\n**{key}**\n")
        lines.append("| method | images | " + " | ".join(shown) + " |")
        lines.append("|---" * (len(shown) + 2) + "|")
        for name, s in summaries.items():
            row = s["overall"] if key is None else s[section].get(key)
            if not row:
                continue
            vals = ["-" if row[m] is None else f"{row[m]:.4g}" for m in shown]
            lines.append(f"| {name} | {row['images']} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


class _Refused(Exception):
    """A request this command refuses before (or instead of) scoring; exit status 2."""


def _configure(args, cfg, sr: bool) -> None:
    """Apply --occlusions/--data-dir to the run's config; refuse flags that do not fit it."""
    if args.degradations and not sr:
        raise _Refused("--degradations applies to super-resolution runs only")
    if args.occlusions and sr:
        raise _Refused("--occlusions applies to inpainting runs only")
    if args.occlusions:
        unknown = [o for o in args.occlusions if o not in OCCLUSION_IDS]
        if unknown:
            raise _Refused(f"unknown occlusion {', '.join(unknown)}; choose from: "
                           f"{', '.join(OCCLUSION_IDS)}")
        cfg.data.eval_occlusions = {o: 1.0 for o in args.occlusions}
    if args.data_dir:
        cfg.data.source, cfg.data.data_dir = "folder", args.data_dir
    for f in args.tflite:
        if not os.path.exists(f):
            raise _Refused(f"no such file: {f}")


def _embedder(path: str | None):
    """The --embedding model, checked before any scoring (a refused file costs nothing)."""
    if not path:
        return None
    try:
        return load_embedder(path).embed
    except (OSError, ValueError) as e:
        raise _Refused(f"--embedding: {e}") from e


def _identity(args, cfg):
    """The --identity evaluation, checked before any scoring (as --embedding)."""
    if not args.identity:
        return None
    try:
        return IdentityEval.load(args.identity, cfg, args.identities)
    except IdentityError as e:
        raise _Refused(f"--identity: {e}") from e


def _batches(args, cfg, sr: bool) -> tuple[list[dict[str, np.ndarray]], Any]:
    """The eval faces to score (the run's eval split, a folder's, or a whole held-out
    folder) and the folder source they came from when it is held out (else None)."""
    n = args.images or cfg.data.eval_count
    source = None
    if args.whole_folder and not args.data_dir:
        raise _Refused("--whole-folder needs --data-dir (the held-out folder)")
    try:
        if args.whole_folder:
            cfg.data.eval_count = n
            source = FolderSource(cfg.data, held_out=True)
        return (sr_eval_batches(cfg, n, args.degradations, source=source) if sr
                else eval_batches(cfg, n, source=source)), source
    except ValueError as e:
        raise _Refused(str(e)) from e


def _restorers(cfg, gen, tflite_files: Sequence[str]) -> dict[str, Any]:
    """The methods to score, by name: the Keras model (raw, and composited into the
    hole for inpainting) and each .tflite file."""
    keys = generator_inputs(cfg)

    def keras_fn(b):
        xs = [b[k] for k in keys]
        return gen.predict(xs[0] if len(xs) == 1 else xs, verbose=0)

    def composited(b):
        return np.where(b["mask"] > 0.5, keras_fn(b), b["occluded"])

    restorers: dict[str, Any] = {"keras": keras_fn}
    if cfg.data.task != "sr":
        restorers["keras_composited"] = composited
    for f, name in zip(tflite_files, method_names(tflite_files, taken=restorers)):
        try:
            runner = LiteRunner(f)
            problem = runner.image_to_image_problem()
            if problem:
                raise ValueError(f"{f}: {problem}")
        except ValueError as e:
            raise _Refused(str(e)) from e
        restorers[name] = runner.run_named
    return restorers


def method_names(files: Sequence[str], taken: Collection[str] = ()) -> list[str]:
    """One report name per .tflite file: its stem (``model_int8``), or as many of its
    parent folders as tell it apart from the others (``vnet/model_int8`` next to
    ``srgan/model_int8``), so two files never share a row or overwrite each other's scores."""
    parts = [os.path.normpath(os.path.abspath(f)).split(os.sep) for f in files]
    parts = [p[:-1] + [os.path.splitext(p[-1])[0]] for p in parts]
    depth = [1] * len(files)
    while True:
        names = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
        clash = [i for i, n in enumerate(names) if n in taken or any(
            m == n and parts[j] != parts[i] for j, m in enumerate(names))]
        grow = [i for i in clash if depth[i] < len(parts[i])]
        if not grow:
            break
        for i in grow:
            depth[i] += 1
    out: list[str] = []
    for n in names:  # the same file given twice, or a file named like a built-in method
        unique, k = n, 2
        while unique in out or unique in taken:
            unique, k = f"{n}#{k}", k + 1
        out.append(unique)
    return out


def _grid(flat: dict[str, np.ndarray], order: np.ndarray, restorers: dict[str, Any], sr: bool,
          path: str) -> None:
    """The worst, median and best faces of ``order`` (indices sorted by the Keras model's
    PSNR), restored by the model, the baselines and every scored .tflite file."""
    pick = [order[0], order[len(order) // 2], order[-1]]
    sel = {k: v[pick] for k, v in flat.items()}
    keras_fn = restorers["keras"]
    if sr:
        columns = {"input": sel["lr"], "bicubic": bicubic(sel), "keras": keras_fn(sel)}
    else:
        columns = {"damaged": sel["occluded"], "keras": keras_fn(sel),
                   "composited": restorers["keras_composited"](sel),
                   "opencv_ns": opencv_inpaint("ns")(sel)}
    # Every scored .tflite file too: its artefacts (int8 banding, a GAN's texture) are
    # easier to see than to read from the table.
    columns.update({k: fn(sel) for k, fn in restorers.items() if k not in columns
                    and not k.startswith("keras")})
    columns["target"] = sel["clean"]
    image_grid(columns, path)


def _write_figures(out_dir: str, flat: dict[str, np.ndarray], rows: dict[str, list],
                   summaries: dict[str, dict], restorers: dict[str, Any], sr: bool) -> list[str]:
    """Worst, median and best restorations of the Keras model (by PSNR) next to the
    baselines and every scored .tflite file (all faces, and for inpainting each occlusion
    on its own), and one bar chart per metric; returns the PNG names."""
    order = np.argsort([r["psnr"] for r in rows["keras"]])
    _grid(flat, order, restorers, sr, os.path.join(out_dir, "worst_median_best.png"))
    figures = ["worst_median_best.png"]
    if not sr:  # one grid per occlusion: a fill that fails on one kind shows there
        names = {v: k for k, v in OCCLUSION_IDS.items()}
        kinds = np.array([r["occlusion"] for r in rows["keras"]])
        for occ in sorted(set(kinds.tolist())):
            idx = order[kinds[order] == occ]
            name = f"worst_median_best_{names.get(occ, occ)}.png"
            _grid(flat, idx, restorers, sr, os.path.join(out_dir, name))
            figures.append(name)
    shown = SR_METRICS_SHOWN if sr else METRICS_SHOWN
    for m in shown:
        name = f"bar_{m}.png"
        bar_chart({k: s["overall"][m] for k, s in summaries.items()},
                  os.path.join(out_dir, name), m, f"{m} on {len(order)} eval faces")
        figures.append(name)
    return figures


def weights_mismatch_notes(run_dir: str, which: str, files: Sequence[str]) -> list[str]:
    """One line per .tflite file whose card says it was converted from other weights
    than the ones scored as ``keras`` (a run's best and last weights differ: a GAN
    fine-tune's last weights are its sharpest, its best the highest PSNR). Files without
    the card's ``source_weights`` (converted before it existed) are not judged."""
    path = weights_source(run_dir, which)
    if path is None:
        return []
    scored, digest = os.path.basename(path), None
    notes = []
    for f in files:
        src = (load_card(f) or {}).get("source_weights")  # a card is a dict or None
        if not isinstance(src, dict) or not isinstance(src.get("sha256"), str):
            continue
        digest = digest or file_sha256(path)
        if src["sha256"] != digest:
            named = src.get("file") if isinstance(src.get("file"), str) else "other weights"
            hint = {weights_file(w): f" (--weights {w} scores those)"
                    for w in ("best", "last")}.get(named, "")
            notes.append(f"{f} was converted from {named}, not from the {scored} scored "
                         f"as 'keras' here: its rows are another model's{hint}")
    return notes


def _markdown(report: dict[str, Any], summaries: dict[str, dict], cfg, run_dir: str,
              figures: list[str]) -> str:
    """report.md: what was scored, the tables by section, face verification, figures."""
    title = f"# Evaluation of {os.path.basename(os.path.normpath(run_dir))}"
    images = report["images"]
    if cfg.data.task == "sr":
        sc, shown = report["scale"], SR_METRICS_SHOWN
        md = [title, "",
              f"{images // max(1, len(summaries['keras']['by_degradation']))} held-out "
              f"faces x {len(summaries['keras']['by_degradation'])} degradation(s) "
              f"({report['data']}), super-resolution "
              f"x{sc} ({cfg.data.image_size // sc} -> {cfg.data.image_size} px). "
              "psnr/ssim/ms_ssim/l1 on 8-bit RGB over the whole image; psnr_y/ssim_y on the "
              f"BT.601 luma Y with {sc} pixels cropped from every border (the SR literature's "
              "convention); sharpness is the mean Sobel gradient magnitude of the result's "
              "luma divided by the real face's, with the same crop (1.0 = as sharp as the "
              "real face; bicubic upsampling scores well below 1). Baselines: "
              "`input` (the untouched LR face, nearest-neighbour upsampled), `bicubic` "
              "(bicubic upsampling of the same LR input).", "", "## Overall", "",
              _table(summaries, "overall", shown), "", "## By scale",
              _table(summaries, "by_scale", shown), "", "## By degradation",
              _table(summaries, "by_degradation", shown), ""]
    else:
        md = [title, "",
              f"{images} held-out faces ({report['data']}). PSNR/SSIM on 8-bit RGB; hole_* "
              "only over the occluded pixels; hole_sharpness is the Sobel gradient magnitude "
              "of the result inside the hole (eroded by 2 px) divided by the real face's there "
              "(1.0 = as sharp as the real face; a smooth fill scores well below 1). "
              "`keras_composited` keeps every pixel outside the "
              "hole from the input. Baselines: `input` (untouched), `opencv_telea`, `opencv_ns` "
              "(OpenCV inpainting given the true mask, radius 3).", "", "## Overall", "",
              _table(summaries, "overall"), "", "## By occlusion",
              _table(summaries, "by_occlusion"), "", "## By hole area",
              _table(summaries, "by_area_bin"), "", "## Remnants", "",
              f"hole_remnant: the fraction of the true hole still showing the occluder (output "
              f"within {REMNANT_LEVELS} levels of the damaged input, largest change over R, G, "
              f"B); clean_changed: the fraction of pixels outside the true hole changed by more "
              f"than {REMNANT_LEVELS} levels. 0 is best for both; `input` keeps the whole "
              "occluder (1.0).", "", _table(summaries, "overall", REMNANT_KEYS), "",
              "### By occlusion", _table(summaries, "by_occlusion", REMNANT_KEYS), ""]
    md[2:2] = [line for n in report.get("notes", []) for line in (f"**Note:** {n}.", "")]
    if "face_recognition" in report:
        fr = report["face_recognition"]
        md += ["## Face verification", "",
               f"Threshold {fr['threshold']:.3f} (FPR {fr['target_fpr']:.0%} on clean pairs).", "",
               "| faces | TPR | FPR | accuracy |", "|---|---|---|---|"]
        md += [f"| {k} | {v['tpr']:.3f} | {v['fpr']:.3f} | {v['accuracy']:.3f} |"
               for k, v in fr["variants"].items()]
    if "identity" in report:
        md += ["", "## Face verification against other photos of the person", "",
               *identity_markdown(report["identity"])]
    md += ["", *[f"![{f}]({f})" for f in figures]]
    return "\n".join(md) + "\n"


def _print_overall(summaries: dict[str, dict], sr: bool) -> None:
    o = {k: v["overall"] for k, v in summaries.items()}

    def sharp(k, key):
        v = o[k].get(key)
        return "-" if v is None else f"{v:.2f}"

    if sr:
        print(f"PSNR (RGB / Y)  keras {o['keras']['psnr']:.2f} / {o['keras']['psnr_y']:.2f}  "
              f"bicubic {o['bicubic']['psnr']:.2f} / {o['bicubic']['psnr_y']:.2f}  "
              f"input {o['input']['psnr']:.2f} / {o['input']['psnr_y']:.2f} dB")
        print(f"sharpness (1.0 = as sharp as the real face)  keras "
              f"{sharp('keras', 'sharpness')}  bicubic {sharp('bicubic', 'sharpness')}")
    else:
        print(f"PSNR  keras {o['keras']['psnr']:.2f}  composited "
              f"{o['keras_composited']['psnr']:.2f}  opencv_ns "
              f"{o['opencv_ns']['psnr']:.2f}  input {o['input']['psnr']:.2f} dB")
        print(f"hole sharpness (1.0 = as sharp as the real face)  keras "
              f"{sharp('keras', 'hole_sharpness')}  opencv_ns "
              f"{sharp('opencv_ns', 'hole_sharpness')}")

        def pct(k, m):
            v = o[k].get(m)
            return "-" if v is None else f"{100 * v:.1f} %"

        print(f"remnants (hole still showing the occluder / clean pixels changed, "
              f"{REMNANT_LEVELS} levels)  " + "  ".join(
                  f"{k} {pct(k, 'hole_remnant')} / {pct(k, 'clean_changed')}"
                  for k in o if k != "input"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _evaluate(args)
    except _Refused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _evaluate(args) -> int:
    try:
        cfg, gen = load_generator(args.run, args.weights)
    except (FileNotFoundError, ValueError) as e:  # missing or foreign run directory
        raise _Refused(str(e)) from e
    sr = cfg.data.task == "sr"
    _configure(args, cfg, sr)
    embed = _embedder(args.embedding)
    identity = _identity(args, cfg)
    out_dir = args.out or os.path.join(args.run, "eval")
    os.makedirs(out_dir, exist_ok=True)
    batches, source = _batches(args, cfg, sr)
    restorers = _restorers(cfg, gen, args.tflite)
    notes = weights_mismatch_notes(args.run, args.weights, args.tflite)
    for note in notes:
        print(f"note: {note}", flush=True)
    print(f"Scoring {sum(len(b['clean']) for b in batches)} eval faces ...", flush=True)
    rows: dict[str, list] = {}
    try:
        summaries = evaluate(restorers, batches, rows_out=rows)
    except ValueError as e:  # e.g. a .tflite file made for another image size
        raise _Refused(str(e)) from e

    flat = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    figures = _write_figures(out_dir, flat, rows, summaries, restorers, sr)
    report: dict[str, Any] = {"run": os.path.abspath(args.run), "task": cfg.data.task,
                              "images": int(len(rows["keras"])),
                              "data": cfg.data.data_dir or cfg.data.source,
                              "metrics": summaries}
    if notes:
        report["notes"] = notes
    if sr:
        report["scale"] = int(cfg.data.scale)
    if embed is not None:
        try:
            variants = {"damaged": nearest_input(flat) if sr else flat["occluded"],
                        **{k: np.concatenate([fn(b) for b in batches])
                           for k, fn in restorers.items()}}
            report["face_recognition"] = face_recognition(embed, flat["clean"], variants)
        except (OSError, ValueError) as e:
            raise _Refused(f"--embedding: {e}") from e
    if identity is not None:
        try:
            report["identity"] = identity.run(cfg, batches, restorers, source)
        except IdentityError as e:
            raise _Refused(f"--identity: {e}") from e
    with open(os.path.join(out_dir, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(_markdown(report, summaries, cfg, args.run, figures))
    _print_overall(summaries, sr)
    if "identity" in report:
        print("\n".join(identity_markdown(report["identity"])[2:]))
    print(f"Report: {os.path.abspath(os.path.join(out_dir, 'report.md'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
