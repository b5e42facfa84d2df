"""Shipping a trained occluder segmenter: int8 and fp16 files with their cards, scored on
held-out faces, with sample inputs and outputs for the asset test.

:func:`export_segmenter` converts a run's model (:mod:`tfface.export.quantize`),
measures pixel accuracy and IoU (:func:`tfface.metrics.mask_scores`) of the Keras model
and of each file on an eval folder per occluder, and writes each file with its model card
(:func:`tfface.cards.new_card`, written by :func:`tfface.export.convert.write_model_and_card`:
card first, model second, both atomically) and its samples on the public-domain astronaut
photo. The command line is ``python -m pipelines.export_segmenter``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Iterator, Sequence

import numpy as np

from tfface.cards import new_card, tensor_entry
from tfface.export.android import samples_manifest, write_samples_manifest
from tfface.export.convert import finish_card, write_model_and_card
from tfface.export.quantize import QuantizationConfig, converter_for, representative_from
from tfface.lite import LiteRunner
from tfface.metrics import mask_scores
from tfface.segmenter.data import segmenter_dataset
from tfface.segmenter.model import SegmenterConfig, training_mixture

__all__ = ["MODES", "EVAL_OCCLUDERS", "eval_occluders", "score_masks", "export_segmenter",
           "init_note", "write_samples"]

MODES = ("int8", "fp16")
"""The files a segmenter ships as: int8 (CPU, the smallest) and fp16 (GPU delegates)."""
EVAL_OCCLUDERS = ("facemask", "sunglasses", "eye_bar", "boxes", "celeba_c", "irregular")
"""Occluders every exported segmenter is scored on (``irregular`` with a mask folder)."""


def eval_occluders(cfg: SegmenterConfig) -> list[str]:
    """The occluders a run's card reports: :data:`EVAL_OCCLUDERS`, the photo-like ones it
    trained on, and the held-out ones it never saw (with a face-mask template folder)."""
    names = [n for n in EVAL_OCCLUDERS if n != "irregular" or cfg.mask_dir]
    names += [n for n in ("realmask", "scarf", "hair", "skin_hand") if n in cfg.occlusions]
    if cfg.facemask_dir:
        names += ["realmask_unseen", "hand_unseen"]
    return names


def score_masks(cfg: SegmenterConfig, predict, eval_dir: str, count: int,
                names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per occluder and over all: mean pixel accuracy and IoU of ``predict`` (a batch of
    faces in [-1, 1] → probabilities) on ``count`` faces of ``eval_dir``, no jitter."""
    out = {}
    all_acc, all_iou = [], []
    for name in names:
        ds = segmenter_dataset(cfg, "train", data_dir=eval_dir, augment=False,
                               mixture={name: 1.0})
        acc, iou, n = [], [], 0
        for x, y in ds:
            p = predict(x.numpy())
            a, i = (v.numpy() for v in mask_scores(y.numpy(), p))
            acc += list(a)
            iou += list(i)
            n += len(a)
            if n >= count:
                break
        acc, iou = acc[:count], iou[:count]
        out[name] = {"pixel_accuracy": round(float(np.mean(acc)), 4),
                     "iou": round(float(np.mean(iou)), 4), "faces": len(acc)}
        all_acc += acc
        all_iou += iou
    out["all"] = {"pixel_accuracy": round(float(np.mean(all_acc)), 4),
                  "iou": round(float(np.mean(all_iou)), 4), "faces": len(all_acc)}
    return out


def export_segmenter(model, cfg: SegmenterConfig, run: str, *, calib_dir: str, eval_dir: str,
                     out: str, modes: Sequence[str] = MODES, eval_count: int = 64,
                     samples: int = 200) -> Iterator[dict[str, Any]]:
    """Convert the segmenter of run folder ``run`` (``model``, ``cfg``: its
    :func:`~tfface.segmenter.model.load_segmenter`) to each of ``modes`` in ``out``;
    yields each file's card as soon as the file, its card and its samples are written.

    Calibration uses ``samples`` faces of ``calib_dir`` through the training pipeline's
    own synthesis; quality is measured on ``eval_count`` faces per occluder of
    ``eval_dir`` (people never seen in training).
    """
    train_batch = int(cfg.batch_size)
    cfg = dataclasses.replace(cfg, batch_size=8)
    names = eval_occluders(cfg)
    rep, n = [], 0
    for x, _ in segmenter_dataset(cfg, "train", data_dir=calib_dir):
        for i in range(x.shape[0]):
            rep.append(x[i:i + 1].numpy())
        n += x.shape[0]
        if n >= samples:
            break
    os.makedirs(os.path.join(out, "samples"), exist_ok=True)

    def keras_predict(x):
        return model(x, training=False).numpy()

    quality_keras = score_masks(cfg, keras_predict, eval_dir, eval_count, names)
    for mode in modes:
        yield _export_file(model, cfg, mode, rep, run=run, out=out, eval_dir=eval_dir,
                           eval_count=eval_count, names=names, quality_keras=quality_keras,
                           train_batch=train_batch)


def _convert(model, mode: str, rep) -> tuple[bytes, dict[str, Any]]:
    if mode == "int8":
        qcfg = QuantizationConfig.for_int8("float", len(rep))
        content = converter_for(model, qcfg, representative_from(rep)).convert()
        return content, {"mode": "int8", "io": "float", "calibration_samples": len(rep)}
    content = converter_for(model, QuantizationConfig.for_fp16()).convert()
    return content, {"mode": "fp16", "io": "float",
                     "note": "float16 weights, float32 compute on the CPU; for GPU delegates"}


def _export_file(model, cfg: SegmenterConfig, mode: str, rep, *, run: str, out: str,
                 eval_dir: str, eval_count: int, names, quality_keras,
                 train_batch: int) -> dict[str, Any]:
    """Convert ``model`` to ``mode`` (int8 or fp16), score it, write file + card + samples."""
    name = f"segmenter_{mode}"
    t0 = time.time()
    content, quant = _convert(model, mode, rep)
    seconds = time.time() - t0
    tmp = os.path.join(out, f"{name}.tflite.tmp")
    with open(tmp, "wb") as f:
        f.write(content)
    runner = LiteRunner(tmp)

    def lite_predict(x):
        return np.concatenate([runner(x[i:i + 1]) for i in range(len(x))])

    quality_file = score_masks(cfg, lite_predict, eval_dir, eval_count, names)
    with open(os.path.join(run, "train_log.jsonl")) as f:
        log = [json.loads(line) for line in f]
    inp = tensor_entry(runner.inputs[0], "input")
    outp = tensor_entry(runner.outputs[0], "output")
    outp.update(layout="NHWC, 1 channel", value_range=[0.0, 1.0],
                denormalization={"formula": "probability that the pixel is occluded; "
                                 "hole = p > 0.5"})
    card = new_card(
        name, f"{name}.tflite", "segment-occluder",
        "unmask segmentation U-Net (tfface.models.unmask._seg_unet)",
        parameters=int(model.count_params()),
        inputs=[inp],
        outputs=[outp],
        signature="serving_default",
        framing="aligned face crop: the five landmarks mapped to tfface/faces/template.json "
                "by a similarity transform (the framing of the training crops)",
        quantization=quant,
        training_data=_training_data(cfg, log, train_batch),
        quality={
            "eval_data": f"{os.path.basename(os.path.normpath(eval_dir))}: people never "
                         f"seen in training; {eval_count} faces per occluder, no jitter",
            "metric": "per-image pixel accuracy and IoU of p > 0.5 against the synthesized "
                      "mask, averaged",
            "keras_float": quality_keras,
            f"tflite_{mode}": quality_file,
        },
        size_bytes=len(content),
        conversion_seconds=round(seconds, 1),
    )
    content = finish_card(content, card)
    os.remove(tmp)
    # Card first, model second, the card holding the model's hash (write_model_and_card).
    card = write_model_and_card(os.path.join(out, f"{name}.tflite"),
                                os.path.join(out, f"{name}.json"), content, card)
    write_samples(out, cfg, name)
    return card


def _training_data(cfg: SegmenterConfig, log: list[dict], train_batch: int) -> dict[str, Any]:
    """The card's ``training_data``: the faces, the synthesis and the run's length."""
    folder = os.path.basename(os.path.normpath(cfg.data_dir)) if cfg.data_dir else None
    return {
        "source": "folder", "description": f"the face photos of the folder '{folder}', "
        "damaged by tfface's occlusion synthesis",
        "image_size": cfg.image_size,
        "occlusions": training_mixture(cfg),
        "clean_fraction": cfg.clean_fraction,
        "jitter": {"degrees": cfg.jitter_degrees, "scale": cfg.jitter_scale,
                   "shift": cfg.jitter_shift},
        "render_scale": cfg.render_scale,
        "photometric": cfg.photometric,
        "photo_conditions": cfg.photo_conditions,
        "held_out": "realmask_unseen (KN95 and cloth templates) and hand_unseen never "
                    "drawn in training (the facemask generator draws only the other "
                    "families' templates)" if "realmask" in cfg.occlusions else None,
        "loss": {"far_weight": cfg.far_weight, "far_margin_px": cfg.far_margin},
        "init_from": init_note(cfg.init_from),
        "steps": int(log[-1]["step"]) if log else 0,
        "batch_size": train_batch,
        "cpu_minutes": round(float(log[-1]["minutes"]), 1) if log else None,
    }


def init_note(src: str | None, depth: int = 0) -> str | None:
    """Where a run's starting weights came from, by file and folder names only (a card
    holds no machine paths): ``run 'seg-b' (from run 'seg-a' (from segmenter_fp16.tflite))``."""
    if not src:
        return None
    name = os.path.basename(os.path.normpath(src))
    if not os.path.isdir(src):
        return name
    try:
        with open(os.path.join(src, "segmenter.json")) as f:
            parent = json.load(f).get("init_from")
    except (OSError, ValueError):
        parent = None
    inner = init_note(parent, depth + 1) if parent and depth < 8 else None
    return f"run '{name}'" + (f" (from {inner})" if inner else "")


def write_samples(dest: str, cfg: SegmenterConfig, name: str = "segmenter_int8") -> None:
    """Astronaut (public domain) aligned crops with four occluders, and the file's outputs."""
    import tensorflow as tf
    from skimage import data

    from tfface.data import occlusion as occ
    from tfface.faces import align as al
    from tfface.faces.detect import make_detector
    from tfface.imageio import to_float, to_uint8, write_image

    size = int(cfg.image_size)
    rgb = data.astronaut()
    face = make_detector("mtcnn").detect(rgb)[0]
    crop, _ = al.align_face(rgb, face.landmarks, size)
    runner = LiteRunner(os.path.join(dest, f"{name}.tflite"))
    entries = []
    for i, occluder in enumerate(("facemask", "sunglasses", "eye_bar", "boxes")):
        fns = occ.default_occluders([occluder])
        o = occ.occlude(tf.constant(crop), tf.constant(al.TEMPLATE), tf.constant([7, i], tf.int64),
                        {occluder: 1.0}, fns)
        px = np.clip(np.round(o["occluded"].numpy()), 0, 255).astype(np.uint8)
        rel = f"samples/{name}_{i}_occluded.png"
        write_image(os.path.join(dest, rel), px)
        prob = runner(to_float(px)[None])[0]
        exp = f"samples/{name}_{i}_expected.png"
        write_image(os.path.join(dest, exp), to_uint8(prob)[..., 0])
        tgt = f"samples/{name}_{i}_target.png"
        hole = (o["mask"].numpy()[..., 0] > 0.5).astype(np.uint8) * 255
        write_image(os.path.join(dest, tgt), hole)
        entries.append({"inputs": {"occluded": rel}, "expected": exp, "target": tgt})
    write_samples_manifest(os.path.join(dest, f"{name}_samples.json"), samples_manifest(
        f"{name}.tflite", f"{name}.json", entries,
        "skimage.data.astronaut() (public domain), aligned, with synthesized occluders",
        expected_encoding="expected PNG = round((p + 1) * 127.5) of the probability p (the "
                          "harness's image mapping); target = the true hole"))
