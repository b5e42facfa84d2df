"""Convert a trained run to ``.tflite`` files, each with its model card.

Examples::

    python -m tflite.convert --int8 --run runs/vnet-demo-20261121-130000
    python -m tflite.convert --float --fp16 --dynamic --int8 --run RUN_DIR --out-dir dist/
    python -m tflite.convert --int8 --qat 200 --run RUN_DIR          # + quantization-aware
    python -m tflite.convert --int8 --auto-mixed 0.1 --run RUN_DIR   # some layers float
    python -m tflite.convert --int8 --prune 0.5 --run RUN_DIR        # pruned, then int8

Each mode writes ``model_<mode>.tflite`` and ``model_<mode>.json`` (the model card: task,
tensor names/shapes/dtypes, how to map pixels to the input range and the output back to
pixels, quantization parameters, training data, versions and the measured fidelity of
the file to the Keras model). The card format, and the checks of a card against its
file, are in :mod:`tfface.cards`; this module measures a file and writes its card.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from importlib.metadata import version
from typing import Any, Sequence

import numpy as np

import tfface
import tensorflow as tf

from tfface.cards import (  # noqa: F401 - re-exported: the card format lived here before
    CARD_FORMAT, CARD_HASH_KEY, INPUT_NORMALIZATION, MASK_NORMALIZATION, OUTPUT_DENORMALIZATION,
    OUTPUT_KIND, TENSOR_KINDS, absolute_paths, card_problems, embed_card, output_entries,
    read_card, strip_card, tensor_entry,
)
from tfface.cli import prog_name
from tfface.data.pipeline import make_dataset
from tfface.fileio import OutputDirError, atomic_path, check_writable_dir, remove_stale_temps
from tfface.imageio import to_float, to_uint8, write_image
from tfface.lite import LiteRunner
from tfface.metrics import psnr as _psnr
from tfface.models import get_arch
from tfface.rundir import RUNS_ROOT, generator_inputs, latest_run, load_generator
from tfface.runlock import DirBusyError, DirLock
from tflite import selective
from tflite.metadata import min_runtime_version, op_inventory
from tflite.quantize import (
    IO_TYPES, MIN_CALIBRATION_SAMPLES, MODES, QuantizationConfig, converter_for,
    representative_from,
)
from tflite.selective import SelectiveQuantizationError, layers_in_message

FIDELITY_IMAGES = 16
LOW_INT8_FIDELITY_DB = 30.0


class ConversionError(RuntimeError):
    """A model could not be converted; the message names the cause and what to do."""


@dataclass
class Converted:
    path: str
    card_path: str
    card: dict[str, Any]


def psnr_between(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) between two [-1, 1] batches compared as 8-bit images; 100 when identical."""
    qa = np.clip(np.round((a + 1) * 127.5), 0, 255)
    qb = np.clip(np.round((b + 1) * 127.5), 0, 255)
    mse = float(np.mean((qa - qb) ** 2))
    return 100.0 if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def portable_name(path: str | None) -> str | None:
    """A run or data folder as a card may name it: relative to the working directory
    when it lies inside it, else its own name; never an absolute machine path."""
    if not path:
        return path
    full = os.path.abspath(path)
    rel = os.path.relpath(full)
    if rel != os.curdir and not rel.startswith(os.pardir) and not os.path.isabs(rel):
        return rel.replace(os.sep, "/")
    return os.path.basename(os.path.normpath(full))


def _folder_name(path: str | None) -> str:
    return os.path.basename(os.path.normpath(os.path.expanduser(path or ""))) or "?"


def _training_data(cfg) -> dict[str, Any]:
    d = cfg.data
    desc = {
        "synthetic": "built-in procedurally drawn synthetic faces (not real photos)",
        "folder": f"face photos from a folder named '{_folder_name(d.data_dir)}'",
        "tfds": f"TFDS dataset {d.tfds_name}",
    }[d.source]
    out = {"source": d.source, "description": desc, "image_size": d.image_size}
    if d.task == "inpaint":
        out["occlusions"] = d.occlusions
    else:
        out["scale"] = d.scale
    return out


def representative_inputs(cfg, n: int, with_targets: bool = False):
    """``n`` calibration samples from the run's own training pipeline, as lists of the
    generator's inputs in its input order (e.g. ``[occluded]`` or ``[occluded, mask]``).

    With ``with_targets`` also returns the samples' ground truth (``clean``, stacked),
    which ``--auto-mixed`` scores the files against."""
    if n < MIN_CALIBRATION_SAMPLES:
        raise ValueError(f"int8 calibration needs at least {MIN_CALIBRATION_SAMPLES} samples, "
                         f"got {n}")
    keys = generator_inputs(cfg)
    out, targets = [], []
    for b in make_dataset(cfg, "train", batch_size=1).take(n):
        out.append([b[k].numpy() for k in keys])
        targets.append(b["clean"].numpy())
    if len(out) < n:
        raise ConversionError(
            f"the run's training pipeline yielded {len(out)} of the {n} calibration samples "
            f"int8 needs (data source: {cfg.data.source}); check that its data is still there")
    return (out, np.concatenate(targets)) if with_targets else out


def fidelity_batch(cfg, n: int = FIDELITY_IMAGES) -> dict[str, np.ndarray]:
    """A fixed batch of real-pipeline eval inputs (the same on every call)."""
    batch = next(iter(make_dataset(cfg, "eval", batch_size=n).take(1)))
    return {k: v.numpy() for k, v in batch.items()}


def convert_model(
    model: tf.keras.Model,
    cfg,
    qcfg: QuantizationConfig,
    out_dir: str,
    *,
    representative: Sequence[np.ndarray] | None = None,
    calibration_targets: np.ndarray | None = None,
    check_batch: dict[str, np.ndarray] | None = None,
    source_run: str | None = None,
    pruning: dict[str, Any] | None = None,
) -> Converted:
    """Convert ``model`` per ``qcfg`` into ``out_dir``; measure and write its card.

    ``representative``: calibration inputs (default: drawn from the run's training
    pipeline); ``calibration_targets``: their ground truth, needed by ``--auto-mixed``
    when ``representative`` is given. ``pruning``: the report of :func:`tflite.qat.prune`
    when ``model`` was pruned (goes into the card, with the file's gzip size).
    """
    os.makedirs(out_dir, exist_ok=True)
    rep, representative, targets = _calibration(cfg, qcfg, representative, calibration_targets)
    t0 = time.time()
    content, source, float_layers, extra = _convert(model, cfg, qcfg, rep, representative,
                                                    targets)
    seconds = time.time() - t0
    path = os.path.join(out_dir, qcfg.file_stem + ".tflite")

    runner = LiteRunner(content)
    batch = check_batch if check_batch is not None else fidelity_batch(cfg)
    xs = [batch[k] for k in generator_inputs(cfg)]
    ref = source.predict(_model_input(xs), verbose=0)
    got = runner.run_named(batch)
    card = _card(model, cfg, qcfg, content, runner, file=os.path.basename(path),
                 calibrated=rep is not None, float_layers=float_layers, source_run=source_run,
                 fidelity=_fidelity(ref, got, qcfg), quality=_quality(batch, got),
                 seconds=seconds)
    if qcfg.mode == "qat":
        float_ref = model.predict(_model_input(xs), verbose=0)
        extra["qat"]["psnr_db_vs_float_keras"] = round(psnr_between(float_ref, got), 3)
    card.update(extra)
    if pruning is not None:
        from tflite.qat import gzip_size  # tensorflow-model-optimization: ~5 s to import

        card["pruning"] = {**pruning, "gzip_bytes": gzip_size(content),
                           "note": "a flatbuffer stores pruned zeros like any weight; the "
                                   "saving shows when the file is compressed (gzip_bytes), "
                                   "e.g. in an APK or a download"}
    if cfg.data.task == "sr":
        card["scale"] = cfg.data.scale
    # The card travels inside the file too; its size field must count the card itself.
    final = _finish_card(content, card)
    card_path = os.path.join(out_dir, qcfg.file_stem + ".json")
    card = write_model_and_card(path, card_path, final, card)
    return Converted(path, card_path, card)


def _model_input(xs: list[np.ndarray]):
    """What ``keras.Model.predict`` takes for a generator's inputs (one array or a list)."""
    return xs[0] if len(xs) == 1 else xs


def _calibration(cfg, qcfg: QuantizationConfig, representative, targets):
    """``(representative dataset, calibration inputs, their ground truth)`` of a
    full-integer conversion: the inputs given, else drawn from the run's training
    pipeline. Other modes need none (``None`` dataset)."""
    if not qcfg.full_integer:
        return None, representative, targets
    if representative is None:
        representative, targets = representative_inputs(
            cfg, qcfg.calibration_samples, with_targets=True)
    try:
        return representative_from(representative), representative, targets
    except ValueError as e:  # e.g. an empty representative dataset
        raise ConversionError(f"int8 calibration cannot start: {e}; nothing was "
                              "written") from e


def _convert(model, cfg, qcfg: QuantizationConfig, rep, representative, targets):
    """``(file bytes, the Keras model they follow, layers kept in float, extra card
    sections)``. QAT fine-tunes a quantized copy first (the model the file follows);
    the converter's bare errors become a :class:`ConversionError` naming the layer."""
    source, extra = model, {}
    if qcfg.mode == "qat":
        # tensorflow-model-optimization takes ~5 s to import: only when QAT is asked for.
        from tflite.qat import UnsupportedLayerError, quantize_aware_finetune

        try:
            source, extra["qat"] = quantize_aware_finetune(model, cfg, qcfg.qat_steps,
                                                           qcfg.qat_lr)
        except UnsupportedLayerError as e:
            raise ConversionError(str(e)) from e
    float_layers: list[str] = []
    try:
        if qcfg.mixed:
            content, float_layers, extra["mixed_precision"] = _convert_mixed(
                model, cfg, qcfg, rep, representative, targets)
        else:
            content = converter_for(source, qcfg, rep).convert()
    except SelectiveQuantizationError as e:
        raise ConversionError(str(e)) from e
    except Exception as e:  # the converter raises bare ConverterError/RuntimeError
        named = layers_in_message(model, str(e))
        hint = (f"The failing op belongs to layer(s) {', '.join(named)}. " if named else "")
        raise ConversionError(
            f"TFLite conversion in mode '{qcfg.mode}' failed: {str(e).strip().splitlines()[-1]}\n"
            f"{hint}If the layer has no TFLite kernel at all, replace it with built-in ops; "
            "if only its int8 kernel is missing, keep it float with --int8 --keep-float "
            f"{named[0] if named else 'LAYER'} (or ship --fp16 / --dynamic)."
        ) from e
    if qcfg.full_integer:
        _check_full_integer(model, content, float_layers)
    return content, source, float_layers, extra


def _fidelity(ref: np.ndarray, got: np.ndarray, qcfg: QuantizationConfig) -> dict[str, Any]:
    """The card's ``fidelity``: how closely the file's outputs follow the Keras model's."""
    return {
        "images": int(ref.shape[0]),
        "reference": ("the quantization-aware Keras model after fine-tuning"
                      if qcfg.mode == "qat" else "the run's Keras model"),
        "psnr_db_vs_keras": round(psnr_between(ref, got), 3),
        "max_abs_error_vs_keras": round(float(np.max(np.abs(ref - got))), 5),
        "note": "PSNR between the Keras and TFLite outputs on a fixed batch of eval inputs, "
                "both mapped to 8-bit pixels",
    }


def _quality(batch: dict[str, np.ndarray], got: np.ndarray) -> dict[str, Any]:
    """The card's ``quality``: the file's PSNR against the ground truth of the batch."""
    return {
        "psnr_db_vs_ground_truth": round(float(np.mean(_psnr(batch["clean"], got).numpy())), 3),
        "images": int(got.shape[0]),
        "split": "eval",
    }


def _card(model, cfg, qcfg: QuantizationConfig, content: bytes, runner: LiteRunner, *,
          file: str, calibrated: bool, float_layers: list[str], source_run: str | None,
          fidelity: dict[str, Any], quality: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The model card of a converted file (before the sections only some modes have)."""
    return {
        "format": CARD_FORMAT,
        "name": qcfg.file_stem,
        "file": file,
        "task": cfg.data.task,
        "architecture": cfg.model.arch,
        "preset": cfg.model.preset,
        "parameters": int(model.count_params()),
        "inputs": [tensor_entry(d, "input") for d in runner.inputs],
        "outputs": output_entries(runner, cfg.data.task),
        "signature": "serving_default",
        "quantization": {**qcfg.to_dict(),
                         "calibration": "eval-free training-pipeline samples" if calibrated
                         else None,
                         "float_layers": float_layers},
        "training_data": _training_data(cfg),
        "source_run": portable_name(source_run),
        "ops": op_inventory(content),
        "min_runtime_version": min_runtime_version(content),
        "size_bytes": len(content),
        "fidelity": fidelity,
        "quality": quality,
        "versions": {"tfface": tfface.__version__, "tensorflow": tf.__version__,
                     "ai_edge_litert": _litert_version()},
        "conversion_seconds": round(seconds, 2),
    }


def write_model_and_card(path: str, card_path: str, content: bytes,
                         card: dict[str, Any]) -> dict[str, Any]:
    """Write a ``.tflite`` and its JSON card so that a kill at any moment never pairs a
    file with a card that does not describe it; returns the card as written.

    Both are written completely under temporary names first, then renamed card first,
    model second. The JSON card carries the SHA-256 of the model (``file_sha256``), which
    :func:`tfface.cards.load_card` checks: a kill between the two renames leaves the
    new card beside the old model, and loaders then use the card embedded in the model
    instead. Temporary files an earlier killed conversion left are removed first.
    """
    for target in (path, card_path):
        remove_stale_temps(target)
    card = {**card, CARD_HASH_KEY: hashlib.sha256(content).hexdigest()}
    text = json.dumps(card, indent=2).encode("utf-8")
    with contextlib.ExitStack() as stack:  # exits last-in first: the card is renamed first
        tmp_model = stack.enter_context(atomic_path(path))
        tmp_card = stack.enter_context(atomic_path(card_path))
        for tmp, data in ((tmp_model, content), (tmp_card, text)):
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
    return card


def _convert_mixed(model, cfg, qcfg: QuantizationConfig, rep, representative, targets):
    """A full-integer file with some layers in float: named (``keep_float``) or the fewest
    the quantization debugger's error ranking needs (``auto_mixed_db``)."""
    conv = converter_for(model, qcfg, rep)
    io_type = IO_TYPES[qcfg.io]
    if qcfg.keep_float:
        res = selective.keep_float(model, conv, rep, qcfg.keep_float, io_type)
        return res.content, res.float_layers, res.details
    if targets is None:
        raise ValueError("--auto-mixed scores files against ground truth: pass "
                         "calibration_targets with representative inputs")
    n = len(representative)
    feed = {k: np.concatenate([s[i] for s in representative])
            for i, k in enumerate(generator_inputs(cfg))}
    xs = list(feed.values())
    ref = model.predict(xs[0] if len(xs) == 1 else xs, verbose=0)
    float_q = float(np.mean(_psnr(targets[:n], ref).numpy()))

    def quality(content: bytes) -> float:
        return float(np.mean(_psnr(targets[:n], LiteRunner(content).run_named(feed)).numpy()))

    res = selective.auto_mixed(model, conv, rep, qcfg.auto_mixed_db, quality, float_q, io_type)
    res.details["images"] = n
    res.details["data"] = "calibration samples (training pipeline), PSNR vs ground truth"
    return res.content, res.float_layers, res.details


def _check_full_integer(model, content: bytes, allowed: Sequence[str]) -> None:
    """A full-integer file must compute in int8 except where float was asked for."""
    stray = [(op, layers) for op, layers in selective.float_op_layers(model, content)
             if not set(layers) & set(allowed)]
    if stray:
        desc = ", ".join(f"{op} (layer {'/'.join(layers) or 'unknown'})" for op, layers in stray)
        first = next((ls[0] for _, ls in stray if ls), "LAYER")
        raise ConversionError(
            f"these ops have no int8 kernel and would run in float inside a full-integer "
            f"file: {desc}. Keep them float deliberately with --keep-float {first}, "
            "replace the layer with one that has int8 kernels, or ship --fp16 / --dynamic.")


def _finish_card(content: bytes, card: dict[str, Any]) -> bytes:
    """``content`` with ``card`` embedded; the card's ``size_bytes`` counts the card itself."""
    for _ in range(5):
        final = embed_card(content, card)
        if card["size_bytes"] == len(final):
            break
        card["size_bytes"] = len(final)
    return final


def refresh_card(path: str) -> dict[str, Any]:
    """Rewrite the model card of an existing ``.tflite`` file in the current card format
    (the JSON beside it and the copy embedded in the file), leaving the model untouched.

    The tensor descriptions are re-derived from the file's own signature (what each
    input is, its range and formula), and machine paths are replaced by portable
    names (``source_run``, the training-data description). Measured figures
    (fidelity, quality, ops) are kept as they are. Returns the new card.

    Raises:
        ValueError: the file is not a TFLite model or carries no tfface card.
    """
    runner = LiteRunner(path)
    with open(path, "rb") as f:
        content = f.read()
    card_path = os.path.splitext(path)[0] + ".json"
    card = None
    if os.path.exists(card_path):  # the JSON keeps the converter's field order
        with open(card_path, encoding="utf-8") as f:
            card = json.load(f)
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        card = read_card(content)
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ValueError(f"{path} carries no {CARD_FORMAT} model card to refresh")
    task = card.get("task", "inpaint")
    card["inputs"] = [tensor_entry(d, "input") for d in runner.inputs]
    card["outputs"] = output_entries(runner, task)
    card["source_run"] = (os.path.basename(os.path.normpath(card["source_run"]))
                          if card.get("source_run") else card.get("source_run"))
    data = card.get("training_data") or {}
    if data.get("source") == "folder" and isinstance(data.get("description"), str):
        folder = data["description"].rsplit(" ", 1)[-1].strip("'")
        data["description"] = f"face photos from a folder named '{_folder_name(folder)}'"
    card.pop(CARD_HASH_KEY, None)  # the hash of the old file; the JSON gets the new one
    final = _finish_card(strip_card(content), card)
    card = write_model_and_card(path, card_path, final, card)
    return card


ANDROID_DIR = "android_demo_assets"
ANDROID_SAMPLES = 4


def export_android(converted: Converted, cfg, assets_dir: str = ANDROID_DIR,
                   samples: int = ANDROID_SAMPLES) -> str:
    """Copy a file and its card into ``assets_dir/<arch>/`` with sample inputs and the
    outputs the file gives for them (PNG), so an app (and the asset test) can check it.

    Expected outputs are computed from the *saved* 8-bit inputs, exactly what an app
    feeding those PNGs gets. ``samples.json`` lists the files and the tolerance. The
    sample faces are always the built-in synthetic ones (same synthesis of damage), so
    the folder never redistributes photos a training set may not allow to share.
    """
    dest = os.path.join(assets_dir, cfg.model.arch)
    os.makedirs(os.path.join(dest, "samples"), exist_ok=True)
    for src in (converted.path, converted.card_path):
        shutil.copy(src, os.path.join(dest, os.path.basename(src)))
    stem = os.path.splitext(os.path.basename(converted.path))[0]
    sample_cfg = copy.deepcopy(cfg)
    sample_cfg.data.source, sample_cfg.data.data_dir = "synthetic", None
    batch = fidelity_batch(sample_cfg, samples)
    runner = LiteRunner(converted.path)
    entries = []
    for i in range(min(samples, len(batch["clean"]))):
        item: dict[str, Any] = {"inputs": {}}
        feed = {}
        for key in generator_inputs(cfg):
            name = f"samples/{stem}_{i}_{key}.png"
            if key == "mask":
                px = (batch[key][i, ..., 0] > 0.5).astype(np.uint8) * 255
                write_image(os.path.join(dest, name), px)
                feed[key] = (px[None, ..., None] > 127).astype(np.float32)
            else:
                px = to_uint8(batch[key][i])
                write_image(os.path.join(dest, name), px)
                feed[key] = to_float(px)[None]
            item["inputs"][key] = name
        out = to_uint8(runner.run_named(feed)[0])
        item["expected"] = f"samples/{stem}_{i}_expected.png"
        write_image(os.path.join(dest, item["expected"]), out)
        item["target"] = f"samples/{stem}_{i}_target.png"
        write_image(os.path.join(dest, item["target"]), to_uint8(batch["clean"][i]))
        entries.append(item)
    manifest = {"model": os.path.basename(converted.path), "card": os.path.basename(converted.card_path),
                "samples": entries,
                "sample_faces": "built-in synthetic faces (redistributable), damaged by the "
                                "run's eval synthesis",
                "tolerance": {"max_abs_levels": ANDROID_TOLERANCE_LEVELS,
                              "note": "per-pixel difference (0..255) allowed between the expected "
                                      "PNG and a fresh run on another CPU / delegate"}}
    with open(os.path.join(dest, f"{stem}_samples.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    return dest


ANDROID_TOLERANCE_LEVELS = 3


def _litert_version() -> str | None:
    try:
        return version("ai-edge-litert")
    except Exception:  # pragma: no cover
        return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("tflite.convert", "tfface-convert"),
        description="Convert a training run's generator into .tflite files, one per mode, "
        "each with a model card (.json) that tells an app how to feed and read it.",
        epilog="Writes into the run directory (or --out-dir DIR): model_<mode>.tflite and "
        "its card model_<mode>.json per mode (e.g. model_int8, model_int8_mixed, model_fp16, "
        "model_qat); with --android also a copy, sample PNGs and <stem>_samples.json in "
        f"{ANDROID_DIR}/<arch>/. Without --run: the most recently trained run under runs/.",
    )
    p.add_argument("--run", metavar="RUN_DIR",
                   help="run directory written by python -m pipelines.train (default: the "
                   "most recently trained run under runs/)")
    p.add_argument("--weights", choices=["best", "last"], default="best",
                   help="which generator weights of the run to convert (default: best)")
    for mode, text in [
        ("float", "float32 (reference)"),
        ("fp16", "float16 weights"),
        ("dynamic", "dynamic range: int8 weights, float activations"),
        ("int8", "full integer: int8 weights and activations, calibrated on pipeline data"),
    ]:
        p.add_argument(f"--{mode}", action="store_true", help=text)
    p.add_argument("--qat", type=int, metavar="STEPS",
                   help="quantization-aware training: fine-tune a quantized copy of the "
                   "generator for STEPS steps on the run's training data with its pixel loss "
                   "(tensorflow-model-optimization), then write a full-integer file "
                   "model_qat.tflite")
    p.add_argument("--qat-lr", type=float, default=1e-4, metavar="LR",
                   help="learning rate of --qat fine-tuning (default 1e-4, constant)")
    p.add_argument("--io", choices=["float", "int8", "uint8"], default="float",
                   help="input/output tensor type of --int8/--qat files (default: float, the "
                   "quantize/dequantize then runs inside the file)")
    p.add_argument("--keep-float", nargs="+", metavar="LAYER", default=[],
                   help="--int8: keep these Keras layers' ops in float (selective "
                   "quantization via TFLite's quantization debugger); an unknown name lists "
                   "the valid ones. The file is model_int8_mixed.tflite")
    p.add_argument("--auto-mixed", type=float, metavar="DB",
                   help="--int8: keep the fewest layers in float (ranked by the quantization "
                   "debugger's per-layer error) so the file's PSNR on the calibration data "
                   "stays within DB dB of the float model's; reports the layers")
    p.add_argument("--prune", type=float, metavar="SPARSITY",
                   help="before converting, prune every conv/dense kernel to SPARSITY "
                   "(0-1, e.g. 0.5) with tensorflow-model-optimization, fine-tuning "
                   "--prune-steps steps; reports achieved sparsity and gzip size "
                   "(files get a _prunedNN suffix)")
    p.add_argument("--prune-steps", type=int, default=100, metavar="N",
                   help="fine-tuning steps of --prune (default 100)")
    p.add_argument("--samples", type=int, default=200, metavar="N",
                   help=f"representative samples for --int8/--qat calibration (default 200, at "
                   f"least {MIN_CALIBRATION_SAMPLES})")
    p.add_argument("--out-dir", metavar="DIR", help="where files go (default: the run directory)")
    p.add_argument("--recard", nargs="+", metavar="FILE",
                   help="instead of converting: rewrite the model card of existing .tflite "
                   "files (FILE.json beside each and the copy inside it) in the current card "
                   "format, keeping the model and its measured figures unchanged")
    p.add_argument("--android", action="store_true",
                   help=f"also copy each file, its card, sample inputs and expected outputs "
                   f"into {ANDROID_DIR}/<arch>/")
    return p


def _check_args(args, modes: list[str]) -> str | None:
    """A usage problem of the flags, as a message (None when they are fine)."""
    if not modes:
        return "choose at least one mode: --float, --fp16, --dynamic, --int8 or --qat STEPS"
    if args.keep_float and args.auto_mixed is not None:
        return "use either --keep-float or --auto-mixed, not both"
    if (args.keep_float or args.auto_mixed is not None) and "int8" not in modes:
        return ("--keep-float/--auto-mixed select layers of a post-training full-integer "
                "file: add --int8")
    if args.auto_mixed is not None and args.auto_mixed < 0:
        return f"--auto-mixed takes a PSNR drop in dB >= 0, got {args.auto_mixed}"
    if args.qat is not None and args.qat < 1:
        return f"--qat takes a number of fine-tuning steps >= 1, got {args.qat}"
    if args.prune is not None and not 0.0 < args.prune < 1.0:
        return f"--prune takes a sparsity between 0 and 1 (e.g. 0.5), got {args.prune}"
    if args.prune is not None and args.prune_steps < 1:
        return f"--prune-steps must be >= 1, got {args.prune_steps}"
    if args.prune is not None and "qat" in modes:
        return ("--prune with --qat is not supported: quantization-aware fine-tuning would "
                "refill the pruned weights; prune with --int8 instead")
    if args.samples < MIN_CALIBRATION_SAMPLES:
        return (f"--samples must be at least {MIN_CALIBRATION_SAMPLES} for a reliable "
                "int8 calibration")
    return None


def _modes(args) -> list[str]:
    """The conversion modes the flags ask for, in :data:`MODES` order (QAT last)."""
    modes = [m for m in MODES if m != "qat" and getattr(args, m)]
    if args.qat is not None:
        modes.append("qat")
    return modes


def _recard(paths: Sequence[str]) -> int:
    """``--recard``: rewrite the cards of existing files; the exit status."""
    for path in paths:
        try:
            card = refresh_card(path)
        except (OSError, ValueError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            return 2
        print(f"Card refreshed: {path} and {os.path.splitext(path)[0]}.json "
              f"(inputs: {', '.join(i['key'] + ' = ' + i['kind'] for i in card['inputs'])})")
    return 0


def _quantization_config(mode: str, args, pruned: bool) -> QuantizationConfig:
    """The :class:`QuantizationConfig` of one mode, from the flags."""
    if mode == "int8":
        qcfg = QuantizationConfig.for_int8(args.io, args.samples)
        if args.keep_float or args.auto_mixed is not None:
            qcfg = qcfg.with_selection(args.keep_float, args.auto_mixed)
    elif mode == "qat":
        qcfg = QuantizationConfig.for_qat(args.qat, args.io, args.samples, args.qat_lr)
    else:
        qcfg = getattr(QuantizationConfig, f"for_{mode}")()
    return replace(qcfg, pruned=args.prune) if pruned else qcfg


def _prune(model, cfg, args):
    """``--prune``: the pruned, fine-tuned model and the pruning report."""
    # tensorflow-model-optimization takes ~5 s to import: only when pruning is asked for.
    from tflite.qat import prune

    print(f"Pruning to {args.prune:.0%} sparsity ({args.prune_steps} fine-tuning steps) ...",
          flush=True)
    model, pruning = prune(model, cfg, args.prune, args.prune_steps)
    print(f"Achieved kernel sparsity: {pruning['achieved_sparsity']:.1%}")
    return model, pruning


def _print_converted(res: Converted, qcfg: QuantizationConfig) -> None:
    """What one conversion did beyond writing the file (float layers, QAT)."""
    kept = res.card["quantization"]["float_layers"]
    if qcfg.mixed:
        print(f"Layers kept in float ({len(kept)}): {', '.join(kept) or 'none'}")
    if "qat" in res.card:
        q = res.card["qat"]
        print(f"QAT: {q['steps']} steps, {q['loss']} loss {q['loss_first_step']:.4f} at the "
              f"first step, {q['loss_mean']:.4f} on average; the file follows the float "
              f"model to {q['psnr_db_vs_float_keras']:.2f} dB")


def _print_table(rows: list[Converted], pruning: dict[str, Any] | None) -> None:
    """One line per file: size, ops, fidelity to Keras and PSNR against the target."""
    print()
    print(f"{'file':<28}{'size':>10}  {'ops (int)':>10}  {'PSNR vs Keras':>14}  "
          f"{'PSNR vs target':>15}")
    for r in rows:
        c = r.card
        ops = f"{c['ops']['compute_ops']} ({c['ops']['integer_ops']})"
        print(f"{c['file']:<28}{c['size_bytes'] / 1e6:>8.2f}MB  {ops:>10}  "
              f"{c['fidelity']['psnr_db_vs_keras']:>11.2f} dB  "
              f"{c['quality']['psnr_db_vs_ground_truth']:>12.2f} dB")
    if pruning is not None:
        print(f"\nPruned to {pruning['achieved_sparsity']:.1%} kernel sparsity "
              f"(target {pruning['target_sparsity']:.0%}); compressed sizes:")
        for r in rows:
            print(f"  {r.card['file']:<34}{r.card['pruning']['gzip_bytes'] / 1e6:>8.2f}MB gzip")


def _warn_low_fidelity(rows: list[Converted], cfg) -> None:
    """Warn about a plain int8 file that follows the Keras model poorly, with the fix."""
    keep = getattr(get_arch(cfg.model.arch), "int8_keep_float", lambda c: [])(cfg)
    for r in rows:
        fid = r.card["fidelity"]["psnr_db_vs_keras"]
        if r.card["quantization"]["mode"] == "int8" and not r.card["quantization"]["float_layers"] \
                and fid < LOW_INT8_FIDELITY_DB:
            hint = (f"This model's {', '.join(keep)} loses too much in int8: convert with "
                    f"--int8 --keep-float {' '.join(keep)} (convolutions stay int8)."
                    if keep else "Models with unbounded activations often quantize poorly: "
                    "train with --set model.params.activation=ReLU6, or ship --fp16 / --dynamic.")
            print(f"warning: {r.card['file']} follows the Keras model only to {fid:.1f} dB. "
                  + hint, file=sys.stderr)


def _print_paths(run_dir: str, rows: list[Converted]) -> None:
    print()
    print(f"Run directory : {os.path.abspath(run_dir)}")
    for r in rows:
        print(f"TFLite model  : {os.path.abspath(r.path)}")
        print(f"Model card    : {os.path.abspath(r.card_path)}")
    print(f"Sample grids  : {os.path.abspath(os.path.join(run_dir, 'samples'))}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.recard:
        return _recard(args.recard)
    modes = _modes(args)
    usage = _check_args(args, modes)
    if usage:
        print(f"error: {usage}", file=sys.stderr)
        return 2
    if args.run is None:
        args.run = latest_run(RUNS_ROOT)
        if args.run is None:
            print(f"error: no --run given and no trained run under {RUNS_ROOT}/ "
                  f"({os.path.abspath(RUNS_ROOT)}); make one with: python -m pipelines.train "
                  "--arch vnet --preset demo --run-dir runs/demo", file=sys.stderr)
            return 2
        print(f"Converting the most recent run under {RUNS_ROOT}/: {args.run}", flush=True)

    out_dir = args.out_dir or args.run
    try:
        cfg, model = load_generator(args.run, args.weights)
        check_writable_dir(out_dir, what="output folder")
        check = fidelity_batch(cfg)  # also proves the run's data source is still usable
    except (FileNotFoundError, ValueError, OutputDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pruning = None
    if args.prune is not None:
        model, pruning = _prune(model, cfg, args)
    rows = []
    for mode in modes:
        qcfg = _quantization_config(mode, args, pruned=pruning is not None)
        print(f"Converting ({mode}) ...", flush=True)
        try:
            # One conversion at a time writes into a folder, so a .tflite and its card
            # always come from the same process (tfface.runlock).
            with DirLock(out_dir, "convert", what="output folder",
                         hint="or pass another --out-dir"):
                res = convert_model(model, cfg, qcfg, out_dir, check_batch=check,
                                    source_run=portable_name(args.run), pruning=pruning)
        except ConversionError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except DirBusyError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        rows.append(res)
        _print_converted(res, qcfg)
        if args.android:
            print(f"Android assets: {export_android(res, cfg)}")
    _print_table(rows, pruning)
    _warn_low_fidelity(rows, cfg)
    _print_paths(args.run, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
