"""Validate ``.tflite`` files before an app loads them (``python -m tflite.validate``).

:func:`validate_file` measures one file: fidelity to the Keras model of a run directory
(PSNR and max abs error on the eval split; a path written in the file's card is never
opened on its own), quality against ground truth (PSNR/SSIM/MS-SSIM/L1 and inside the
hole, per occlusion generator and hole-area bin, next to the damaged input and OpenCV
inpainting given the true mask; for super-resolution PSNR/SSIM on RGB and on the luma Y
with a ``scale``-pixel border crop, per degradation, next to bicubic upsampling and the
nearest-upsampled input), latency (p50/p90 for 1, 2 and 4 threads, with and without
XNNPACK), the process's peak memory, and the graph inventory (ops, how many run in
int8, float fallbacks, minimum runtime version, and how many partitions XNNPACK splits
the graph into: more than one means some ops run in LiteRT's slower built-in kernels).
:func:`gate_failures` says which gates a report misses, :func:`comparison_table` and
:func:`write_figures` compare several files, and :func:`check_samples` re-runs a
shipped file on its sample inputs.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import cv2
import numpy as np

import tfface  # noqa: F401

from tfface.cards import load_card
from tfface.config import Config
from tfface.evaluation import eval_batches, evaluate, sr_eval_batches
from tfface.export.convert import psnr_between
from tfface.export.harness import delegate_partitions, measure_latency, peak_memory_mb
from tfface.export.metadata import min_runtime_version, op_inventory
from tfface.figures import image_grid, scatter
from tfface.fileio import display_name
from tfface.imageio import to_float, to_uint8
from tfface.lite import LiteRunner
from tfface.rundir import CONFIG_FILE, generator_inputs, load_generator, model_input_shapes

GATE_LATENCY_THREADS = 2
GRID_FACES = 4


def validate_file(
    path: str,
    *,
    run_dir: str | None = None,
    data_dir: str | None = None,
    images: int = 64,
    latency_runs: int = 20,
    threads: tuple[int, ...] = (1, 2, 4),
    keras_model=None,
    degradations: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Measure one ``.tflite`` file; see the module docstring for what is measured.

    ``degradations`` (super-resolution only) lists the degradation presets whose LR
    inputs are scored (default: the run's own).
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    runner = LiteRunner(path)  # ValueError naming the problem for a file that is not one
    problem = runner.image_to_image_problem()
    if problem:
        raise ValueError(f"{path}: {problem}; tflite.validate measures face restoration files")
    card = load_card(path) or {}
    # A path written in a card is never followed on its own (a card can come from
    # anyone): the run to compare with is the one the user names with --run, or the
    # folder the file itself lies in when that is a run directory.
    beside = os.path.dirname(os.path.abspath(path))
    if run_dir is None and os.path.exists(os.path.join(beside, CONFIG_FILE)):
        run_dir = beside
    named_run = card.get("source_run") if isinstance(card.get("source_run"), str) else None
    mode = card.get("quantization", {}).get("mode") if isinstance(
        card.get("quantization"), dict) else None
    report: dict[str, Any] = {"file": path, "size_bytes": os.path.getsize(path),
                              "mode": mode if isinstance(mode, str) else None,
                              "ops": op_inventory(path),
                              "min_runtime_version": min_runtime_version(path),
                              "xnnpack_partitions": delegate_partitions(path)}
    latency_shapes = latency_inputs = None
    if run_dir:  # named by the user: a folder that is not a run is an error, not a skip
        if keras_model is None:
            cfg, keras_model = load_generator(run_dir)
        else:
            cfg = Config.load(os.path.join(run_dir, CONFIG_FILE))
        if data_dir:
            cfg.data.source, cfg.data.data_dir = "folder", data_dir
        keys = generator_inputs(cfg)
        _check_inputs_match(runner, cfg, keys, path, run_dir)
        if cfg.data.task == "sr":
            batches = sr_eval_batches(cfg, images, degradations)
        elif degradations:
            raise ValueError("--degradations applies to super-resolution runs only")
        else:
            batches = eval_batches(cfg, images)

        def tfl(batch):
            return runner.run_named(batch)

        def ker(batch):
            xs = [batch[k] for k in keys]
            return keras_model.predict(xs[0] if len(xs) == 1 else xs, verbose=0)

        ref = np.concatenate([ker(b) for b in batches])
        got = np.concatenate([tfl(b) for b in batches])
        report["fidelity"] = {"psnr_db": psnr_between(ref, got),
                              "max_abs_error": float(np.max(np.abs(ref - got))),
                              "images": int(len(ref))}
        report["task"] = cfg.data.task
        report["quality"] = evaluate({"tflite": tfl, "keras": ker}, batches)
        if cfg.data.task == "sr":
            report["scale"] = int(cfg.data.scale)
        latency_shapes = [(1, *batches[0][k].shape[1:]) for k in runner.input_keys]
        latency_inputs = [batches[0][k][:1] for k in runner.input_keys]
        report["_faces"] = {"input": batches[0][keys[0]][:GRID_FACES],
                            "output": got[:GRID_FACES],
                            "target": batches[0]["clean"][:GRID_FACES]}
    else:
        report["note"] = ("no run directory given (pass --run RUN_DIR): fidelity and quality "
                          "were not measured")
        if named_run and not run_dir:
            report["note"] += (f"; the card names the run {display_name(named_run)[:200]!r}, "
                               "which is not opened unless you pass it with --run")
    if runner.dynamic and latency_shapes is None:
        report["latency"] = []
        report["note"] = (report.get("note", "") + "; the file has open input dimensions: "
                          "latency needs a run directory (its image size)").lstrip("; ")
    else:
        report["latency"] = measure_latency(path, threads=threads, runs=latency_runs,
                                            input_shapes=latency_shapes if runner.dynamic else None,
                                            inputs=latency_inputs)
    report["peak_memory_mb"] = peak_memory_mb()
    return report


def _check_inputs_match(runner: LiteRunner, cfg, keys, path: str, run_dir: str) -> None:
    """Refuse a file whose inputs do not match the images of the run it is checked against."""
    want = model_input_shapes(cfg)
    if sorted(runner.input_keys) != sorted(keys):
        raise ValueError(f"{path} takes inputs {runner.input_keys}, but the run {run_dir} "
                         f"feeds {list(keys)}; pass the matching --run RUN_DIR")
    for detail, key in zip(runner.inputs, runner.input_keys):
        got = tuple(int(v) for v in detail["shape"][1:])
        if got != want[key]:
            raise ValueError(
                f"{path} expects '{key}' of shape {got}, but the run {run_dir} makes images of "
                f"shape {want[key]}; pass the run the file was converted from (--run RUN_DIR)")


def gate_failures(report: dict[str, Any], min_fidelity_db: float | None,
                  min_psnr: float | None, max_latency_ms: float | None) -> list[str]:
    """Human-readable reasons a report misses the gates (empty when it passes)."""
    fails = []
    fid = report.get("fidelity", {}).get("psnr_db")
    if min_fidelity_db is not None:
        if fid is None:
            fails.append("fidelity not measured (no run directory)")
        elif fid < min_fidelity_db:
            fails.append(f"fidelity {fid:.2f} dB < {min_fidelity_db} dB")
    psnr = report.get("quality", {}).get("tflite", {}).get("overall", {}).get("psnr")
    if min_psnr is not None:
        if psnr is None:
            fails.append("quality not measured")
        elif psnr < min_psnr:
            fails.append(f"PSNR {psnr:.2f} dB < {min_psnr} dB")
    if max_latency_ms is not None:
        lat = [r["p50_ms"] for r in report["latency"]
               if r["threads"] == GATE_LATENCY_THREADS and r["xnnpack"]]
        if not lat:
            fails.append("latency not measured")
        elif lat[0] > max_latency_ms:
            fails.append(f"latency p50 {lat[0]:.2f} ms > {max_latency_ms} ms "
                         f"({GATE_LATENCY_THREADS} threads, XNNPACK)")
    return fails


def _fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def comparison_table(reports: list[dict[str, Any]]) -> str:
    """One markdown table comparing the files (inpainting: PSNR inside the hole and
    OpenCV Navier–Stokes; super-resolution: Y-channel PSNR and bicubic)."""
    sr = any(r.get("task") == "sr" for r in reports)
    extra, base = (("psnr_y", "bicubic") if sr else ("hole_psnr", "opencv_ns"))
    titles = (("Y PSNR (crop)", "bicubic PSNR", "bicubic Y PSNR") if sr
              else ("hole PSNR", "OpenCV NS PSNR", "OpenCV NS hole PSNR"))
    head = ("| file | mode | size MB | int8 ops | XNNPACK parts | p50 ms (2 thr) | fidelity dB | "
            "PSNR | SSIM | " + " | ".join(titles) + " |\n" + "|---" * 12 + "|")
    lines = [head]
    for r in reports:
        lat = next((x["p50_ms"] for x in r["latency"] if x["threads"] == 2 and x["xnnpack"]), None)
        q = r.get("quality", {})
        t = q.get("tflite", {}).get("overall", {})
        b = q.get(base, {}).get("overall", {})
        ops = r["ops"]
        lines.append(
            f"| {os.path.basename(r['file'])} | {r.get('mode') or '-'} | "
            f"{r['size_bytes'] / 1e6:.2f} | {ops['integer_ops']}/{ops['compute_ops']} | "
            f"{r.get('xnnpack_partitions', '-')} | {_fmt(lat)} | "
            f"{_fmt(r.get('fidelity', {}).get('psnr_db'))} | "
            f"{_fmt(t.get('psnr'))} | {_fmt(t.get('ssim'), '.3f')} | {_fmt(t.get(extra))} | "
            f"{_fmt(b.get('psnr'))} | {_fmt(b.get(extra))} |"
        )
    return "\n".join(lines)


def write_figures(reports: list[dict[str, Any]], out_dir: str) -> list[str]:
    """PNG figures of a validation: faces restored by each file; quality vs latency/size."""
    written = []
    with_faces = [r for r in reports if "_faces" in r]
    if with_faces:
        cols = {"input": with_faces[0]["_faces"]["input"]}
        for r in with_faces:
            cols[os.path.splitext(os.path.basename(r["file"]))[0]] = r["_faces"]["output"]
        cols["target"] = with_faces[0]["_faces"]["target"]
        if len({c.shape[0] for c in cols.values()}) == 1:
            image_grid(cols, os.path.join(out_dir, "validation_faces.png"))
            written.append("validation_faces.png")
    points = []
    for r in reports:
        lat = next((x["p50_ms"] for x in r["latency"]
                    if x["threads"] == GATE_LATENCY_THREADS and x["xnnpack"]), None)
        psnr = r.get("quality", {}).get("tflite", {}).get("overall", {}).get("psnr")
        points.append({"name": os.path.basename(r["file"]), "latency": lat,
                       "size": r["size_bytes"] / 1e6, "psnr": psnr})
    if any(p["psnr"] is not None for p in points):
        scatter(points, "latency", "psnr", "name", os.path.join(out_dir, "quality_vs_latency.png"),
                f"p50 latency, ms ({GATE_LATENCY_THREADS} threads, XNNPACK)", "PSNR vs ground truth, dB",
                "Quality against latency")
        scatter(points, "size", "psnr", "name", os.path.join(out_dir, "quality_vs_size.png"),
                "file size, MB", "PSNR vs ground truth, dB", "Quality against size")
        written += ["quality_vs_latency.png", "quality_vs_size.png"]
    return written


def _inside(base: str, rel: Any) -> str:
    """``base/rel`` for a relative name inside ``base``; a manifest never points elsewhere."""
    if not isinstance(rel, str) or os.path.isabs(rel) or ".." in rel.replace("\\", "/").split("/"):
        raise ValueError(f"the samples manifest may only name files inside {base}, got {rel!r}")
    return os.path.join(base, rel)


def check_samples(manifest_path: str) -> dict[str, Any]:
    """Re-run a shipped file on its sample inputs and compare with the expected PNGs.

    Returns ``{"ok": bool, "max_abs_levels": int, "problems": [...]}``; also checks
    that the model card describes the file's tensors (names, shapes, dtypes and the
    quantization parameters of integer I/O).
    """
    base = os.path.dirname(os.path.abspath(manifest_path))
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    problems: list[str] = []
    path = _inside(base, manifest["model"])
    runner = LiteRunner(path)
    with open(_inside(base, manifest["card"]), encoding="utf-8") as f:
        card = json.load(f)
    for entry, detail in zip(card["inputs"] + card["outputs"], runner.inputs + runner.outputs):
        if entry["name"] != detail["name"] or entry["shape"] != [int(v) for v in detail["shape"]] \
                or entry["dtype"] != np.dtype(detail["dtype"]).name:
            problems.append(f"card does not match tensor {detail['name']}")
        q = entry.get("quantization")
        if q and (abs(q["scale"] - detail["quantization"][0]) > 1e-12
                  or q["zero_point"] != detail["quantization"][1]):
            problems.append(f"card quantization does not match tensor {detail['name']}")
    worst = 0
    for item in manifest["samples"]:
        feed = {}
        for key, rel in item["inputs"].items():
            img = cv2.imread(_inside(base, rel), cv2.IMREAD_UNCHANGED)
            if img is None:
                problems.append(f"missing sample {rel}")
                continue
            if key == "mask":
                feed[key] = (img[None, ..., None] > 127).astype(np.float32)
            else:
                feed[key] = to_float(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))[None]
        expected = cv2.imread(_inside(base, item["expected"]), cv2.IMREAD_COLOR)
        if expected is None or len(feed) != len(item["inputs"]):
            problems.append(f"missing expected output {item['expected']}")
            continue
        got = to_uint8(runner.run_named(feed)[0])
        diff = int(np.max(np.abs(got.astype(int) - cv2.cvtColor(expected, cv2.COLOR_BGR2RGB).astype(int))))
        worst = max(worst, diff)
    tol = manifest["tolerance"]["max_abs_levels"]
    if worst > tol:
        problems.append(f"outputs differ from the expected PNGs by up to {worst} levels (> {tol})")
    return {"ok": not problems, "max_abs_levels": worst, "problems": problems}
