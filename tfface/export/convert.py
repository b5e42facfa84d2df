"""Convert a trained generator to ``.tflite`` files, each with its model card.

:func:`convert_model` converts one Keras generator per :class:`QuantizationConfig`
(float, fp16, dynamic, int8 with layers kept in float, QAT; pruned first on request),
measures the file's fidelity to the Keras model and its quality on the run's eval
inputs, and writes ``<stem>.tflite`` with its **model card** (``<stem>.json``, also
embedded in the file) under the output folder's conversion lock
(:mod:`tfface.runlock`), so a file and its card always come from one process.
:func:`convert_run` does that for a run directory and several modes;
:func:`refresh_card` rewrites the card of an existing file. The card format and its
checks are :mod:`tfface.cards`; ``python -m tflite.convert`` is the command line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Callable, Sequence

import numpy as np

import tfface
import tensorflow as tf

from tfface.cards import (
    CARD_FORMAT, CARD_HASH_KEY, embed_card, file_sha256, new_card, output_entries, read_card,
    strip_card, tensor_entry,
)
from tfface.data.pipeline import make_dataset
from tfface.export import selective
from tfface.export.metadata import min_runtime_version, op_inventory
from tfface.export.quantize import (
    IO_TYPES, MIN_CALIBRATION_SAMPLES, QuantizationConfig, converter_for, representative_from,
)
from tfface.export.selective import SelectiveQuantizationError, layers_in_message
from tfface.fileio import atomic_path, check_writable_dir, remove_stale_temps
from tfface.lite import LiteRunner
from tfface.metrics import psnr as _psnr
from tfface.models import get_arch
from tfface.rundir import generator_inputs, load_generator, weights_source
from tfface.runlock import DirLock

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
    busy_hint: str = "or convert into another folder",
    source_weights: dict[str, Any] | None = None,
) -> Converted:
    """Convert ``model`` per ``qcfg`` into ``out_dir``; measure and write its card.

    ``representative``: calibration inputs (default: drawn from the run's training
    pipeline); ``calibration_targets``: their ground truth, needed by ``--auto-mixed``
    when ``representative`` is given. ``pruning``: the report of :func:`tfface.export.qat.prune`
    when ``model`` was pruned (goes into the card, with the file's gzip size).
    ``source_weights``: the card's record of the weight file ``model`` holds
    (:func:`source_weights`).

    One conversion at a time writes into a folder, so a ``.tflite`` and its card always
    come from the same process: the folder's conversion lock is held throughout, and a
    folder another process converts into raises :class:`~tfface.runlock.DirBusyError`
    (its message ends with ``busy_hint``) before anything is written.
    """
    os.makedirs(out_dir, exist_ok=True)
    with DirLock(out_dir, "convert", what="output folder", hint=busy_hint):
        return _convert_and_write(model, cfg, qcfg, out_dir, representative,
                                  calibration_targets, check_batch, source_run, pruning,
                                  source_weights)


def _convert_and_write(model, cfg, qcfg: QuantizationConfig, out_dir: str, representative,
                       calibration_targets, check_batch, source_run, pruning,
                       source_weights=None) -> Converted:
    """:func:`convert_model` once the output folder's lock is held."""
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
    if source_weights is not None:
        card["source_weights"] = dict(source_weights)
    if pruning is not None:
        from tfface.export.qat import gzip_size  # tensorflow-model-optimization: ~5 s to import

        card["pruning"] = {**pruning, "gzip_bytes": gzip_size(content),
                           "note": "a flatbuffer stores pruned zeros like any weight; the "
                                   "saving shows when the file is compressed (gzip_bytes), "
                                   "e.g. in an APK or a download"}
    if cfg.data.task == "sr":
        card["scale"] = cfg.data.scale
    # The card travels inside the file too; its size field must count the card itself.
    final = finish_card(content, card)
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
        from tfface.export.qat import UnsupportedLayerError, quantize_aware_finetune

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
    return new_card(
        qcfg.file_stem, file, cfg.data.task, cfg.model.arch,
        preset=cfg.model.preset,
        parameters=int(model.count_params()),
        inputs=[tensor_entry(d, "input") for d in runner.inputs],
        outputs=output_entries(runner, cfg.data.task),
        signature="serving_default",
        quantization={**qcfg.to_dict(),
                      "calibration": "eval-free training-pipeline samples" if calibrated
                      else None,
                      "float_layers": float_layers},
        training_data=_training_data(cfg),
        source_run=portable_name(source_run),
        ops=op_inventory(content),
        min_runtime_version=min_runtime_version(content),
        size_bytes=len(content),
        fidelity=fidelity,
        quality=quality,
        versions={"tfface": tfface.__version__, "tensorflow": tf.__version__,
                  "ai_edge_litert": _litert_version()},
        conversion_seconds=round(seconds, 2),
    )


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


def finish_card(content: bytes, card: dict[str, Any]) -> bytes:
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
    final = finish_card(strip_card(content), card)
    card = write_model_and_card(path, card_path, final, card)
    return card


def _litert_version() -> str | None:
    try:
        return version("ai-edge-litert")
    except Exception:  # pragma: no cover
        return None


def int8_keep_float(cfg) -> list[str]:
    """Layers of the family's generator that its int8 files keep in float (e.g. the
    classical fill of a prefill V-Net: int8 convolutions around it); usually none."""
    return list(get_arch(cfg.model.arch).int8_keep_float(cfg))


@dataclass
class RunToConvert:
    """A run's generator ready to convert: its config, Keras model and the fixed eval
    batch every file's fidelity is measured on."""
    run_dir: str
    cfg: Any
    model: tf.keras.Model
    check_batch: dict[str, np.ndarray]
    weights: dict[str, Any] | None = None
    """The card's ``source_weights``: the weight file converted and its SHA-256."""


def load_run_to_convert(run_dir: str, weights: str = "best",
                        out_dir: str | None = None,
                        input_size: int | None = None) -> RunToConvert:
    """Load a run's generator for conversion and check that the output folder
    (default: the run directory) can be written and the run's data is still usable.
    ``input_size``: convert the generator at this input side instead of the run's
    (:func:`tfface.rundir.load_generator`).

    Raises:
        FileNotFoundError, ValueError: not a usable run directory.
        tfface.fileio.OutputDirError: the output folder cannot be written.
    """
    cfg, model = load_generator(run_dir, weights, input_size)
    check_writable_dir(out_dir or run_dir, what="output folder")
    check = fidelity_batch(cfg)  # also proves the run's data source is still usable
    return RunToConvert(run_dir, cfg, model, check, source_weights(run_dir, weights))


def source_weights(run_dir: str, which: str = "best") -> dict[str, Any]:
    """The card's ``source_weights``: which weight file of the run a file was converted
    from and its SHA-256 (a run's best and last weights differ; ``pipelines.evaluate``
    compares this with the weights it scores), or the checkpoint fallback."""
    path = weights_source(run_dir, which)
    if path is None:
        return {"file": None, "sha256": None,
                "note": "the run's newest training checkpoint (no weight file yet)"}
    return {"file": os.path.basename(path), "sha256": file_sha256(path)}


def convert_run(run: RunToConvert, qcfgs: Sequence[QuantizationConfig],
                out_dir: str | None = None, *, pruning: dict[str, Any] | None = None,
                on_converted: Callable[[Converted, QuantizationConfig], None] | None = None,
                log: Callable[[str], None] | None = None,
                busy_hint: str = "or convert into another folder") -> list[Converted]:
    """Convert ``run``'s generator once per config into ``out_dir`` (default: the run
    directory), each under the folder's conversion lock; ``log`` hears "Converting
    (<mode>) ..." before each, ``on_converted`` gets each result as it is written.

    Raises:
        ConversionError: a mode could not be converted (the message names the cause).
        tfface.runlock.DirBusyError: another process converts into the folder.
    """
    out_dir = out_dir or run.run_dir
    rows = []
    for qcfg in qcfgs:
        if log is not None:
            log(f"Converting ({qcfg.mode}) ...")
        res = convert_model(run.model, run.cfg, qcfg, out_dir, check_batch=run.check_batch,
                            source_run=portable_name(run.run_dir), pruning=pruning,
                            busy_hint=busy_hint, source_weights=run.weights)
        rows.append(res)
        if on_converted is not None:
            on_converted(res, qcfg)
    return rows


def converted_notes(res: Converted, qcfg: QuantizationConfig) -> list[str]:
    """What one conversion did beyond writing the file (float layers, QAT), as lines."""
    lines = []
    kept = res.card["quantization"]["float_layers"]
    if qcfg.mixed:
        lines.append(f"Layers kept in float ({len(kept)}): {', '.join(kept) or 'none'}")
    if "qat" in res.card:
        q = res.card["qat"]
        lines.append(f"QAT: {q['steps']} steps, {q['loss']} loss {q['loss_first_step']:.4f} at "
                     f"the first step, {q['loss_mean']:.4f} on average; the file follows the "
                     f"float model to {q['psnr_db_vs_float_keras']:.2f} dB")
    return lines


def summary_table(rows: Sequence[Converted], pruning: dict[str, Any] | None = None) -> str:
    """One line per file: size, ops, fidelity to Keras and PSNR against the target."""
    lines = ["", f"{'file':<28}{'size':>10}  {'ops (int)':>10}  {'PSNR vs Keras':>14}  "
             f"{'PSNR vs target':>15}"]
    for r in rows:
        c = r.card
        ops = f"{c['ops']['compute_ops']} ({c['ops']['integer_ops']})"
        lines.append(f"{c['file']:<28}{c['size_bytes'] / 1e6:>8.2f}MB  {ops:>10}  "
                     f"{c['fidelity']['psnr_db_vs_keras']:>11.2f} dB  "
                     f"{c['quality']['psnr_db_vs_ground_truth']:>12.2f} dB")
    if pruning is not None:
        lines.append(f"\nPruned to {pruning['achieved_sparsity']:.1%} kernel sparsity "
                     f"(target {pruning['target_sparsity']:.0%}); compressed sizes:")
        for r in rows:
            lines.append(f"  {r.card['file']:<34}{r.card['pruning']['gzip_bytes'] / 1e6:>8.2f}MB gzip")
    return "\n".join(lines)


def low_fidelity_warnings(rows: Sequence[Converted], cfg) -> list[str]:
    """A warning, with the fix, for each plain int8 file that follows the Keras model
    poorly (below :data:`LOW_INT8_FIDELITY_DB`)."""
    keep = int8_keep_float(cfg)
    out = []
    for r in rows:
        fid = r.card["fidelity"]["psnr_db_vs_keras"]
        if r.card["quantization"]["mode"] == "int8" and not r.card["quantization"]["float_layers"] \
                and fid < LOW_INT8_FIDELITY_DB:
            hint = (f"This model's {', '.join(keep)} loses too much in int8: convert with "
                    f"--int8 --keep-float {' '.join(keep)} (convolutions stay int8)."
                    if keep else "Models with unbounded activations often quantize poorly: "
                    "train with --set model.params.activation=ReLU6, or ship --fp16 / --dynamic.")
            out.append(f"warning: {r.card['file']} follows the Keras model only to {fid:.1f} dB. "
                       + hint)
    return out


def paths_text(run_dir: str, rows: Sequence[Converted]) -> str:
    """Where a conversion's files are, one line each (absolute paths)."""
    lines = ["", f"Run directory : {os.path.abspath(run_dir)}"]
    for r in rows:
        lines.append(f"TFLite model  : {os.path.abspath(r.path)}")
        lines.append(f"Model card    : {os.path.abspath(r.card_path)}")
    samples = os.path.join(run_dir, "samples")
    if os.path.isdir(samples):  # the training run's grids (a soup or a copied run has none)
        lines.append(f"Sample grids  : {os.path.abspath(samples)}")
    return "\n".join(lines)
