"""Convert a trained occluder segmenter to int8 and fp16, measure them on held-out faces, ship them.

Example::

    python -m pipelines.export_segmenter runs/segmenter --calib-dir faces-train \\
        --eval-dir faces-dev --out android_demo_assets/segmenter

Writes ``segmenter_int8.tflite`` (float input/output, int8 inside; the card embedded in
its metadata too), ``segmenter_int8.json`` (the card: tensors, normalization, training
data, pixel accuracy and IoU of the Keras model and of the int8 file on the eval
folder, per occluder), and ``segmenter_int8_samples.json`` + ``samples/`` (inputs and
expected outputs on the public-domain astronaut photo, for the asset test); and the same
four for ``segmenter_fp16`` (float16 weights: the file for GPU delegates). ``--modes``
picks one of them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Sequence

import numpy as np

import tfface  # noqa: F401
from tfface.cli import prog_name

MODES = ("int8", "fp16")
EVAL_OCCLUDERS = ("facemask", "sunglasses", "eye_bar", "boxes", "celeba_c", "irregular")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog_name("pipelines.export_segmenter"),
                                description="int8 conversion, held-out figures and the "
                                "android_demo_assets entry of an occluder segmenter.")
    p.add_argument("run", help="segmenter training folder (python -m pipelines.train_segmenter)")
    p.add_argument("--calib-dir", required=True, help="face folder for int8 calibration "
                   "(the training faces)")
    p.add_argument("--eval-dir", required=True, help="face folder never seen in training")
    p.add_argument("--eval-count", type=int, default=64, help="faces per occluder")
    p.add_argument("--samples", type=int, default=200, help="calibration samples")
    p.add_argument("--out", default="android_demo_assets/segmenter")
    p.add_argument("--modes", default="int8,fp16",
                   help="files to write, comma-separated: int8 (CPU, the smallest) and/or "
                        "fp16 (for GPU delegates)")
    return p


def _scores(cfg, predict, eval_dir: str, count: int, names) -> dict[str, dict[str, float]]:
    from tfface.faces.segmenter import mask_scores, segmenter_dataset

    out = {}
    all_acc, all_iou = [], []
    for name in names:
        ds = segmenter_dataset(cfg, "train", data_dir=eval_dir, augment=False,
                               mixture={name: 1.0})
        acc, iou, n = [], [], 0
        for x, y in ds:
            p = predict(x.numpy())
            a, i = mask_scores(y.numpy(), p)
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import dataclasses

    from tfface.faces.segmenter import load_segmenter, segmenter_dataset

    try:
        model, cfg = load_segmenter(args.run)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: cannot load the segmenter run {args.run}: {e}", file=sys.stderr)
        return 2
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if not modes or bad:
        print(f"error: --modes takes a comma list of {', '.join(MODES)}, got '{args.modes}'",
              file=sys.stderr)
        return 2
    train_batch = int(cfg.batch_size)
    cfg = dataclasses.replace(cfg, batch_size=8)
    names = [n for n in EVAL_OCCLUDERS if n != "irregular" or cfg.mask_dir]
    # the photo-like occluders it trained on, and the held-out ones it never saw
    names += [n for n in ("realmask", "scarf", "hair") if n in cfg.occlusions]
    if cfg.facemask_dir:
        names += ["realmask_unseen", "hand_unseen"]

    # Calibration: the training pipeline's own inputs (real faces, same synthesis).
    rep, n = [], 0
    for x, _ in segmenter_dataset(cfg, "train", data_dir=args.calib_dir):
        for i in range(x.shape[0]):
            rep.append(x[i:i + 1].numpy())
        n += x.shape[0]
        if n >= args.samples:
            break
    os.makedirs(os.path.join(args.out, "samples"), exist_ok=True)

    def keras_predict(x):
        return model(x, training=False).numpy()

    quality_keras = _scores(cfg, keras_predict, args.eval_dir, args.eval_count, names)
    for mode in modes:
        card = _export(model, cfg, mode, rep, args, names, quality_keras, train_batch)
        print(f"{card['file']}: {card['size_bytes'] / 1e6:.2f} MB")
        print(json.dumps(card["quality"], indent=2))
    return 0


def _export(model, cfg, mode: str, rep, args, names, quality_keras, train_batch) -> dict:
    """Convert ``model`` to ``mode`` (int8 or fp16), score it, write file + card + samples."""
    from tfface.faces.segmenter import _mixture
    from tfface.cards import tensor_entry
    from tfface.lite import LiteRunner
    from tfface.export.convert import finish_card, write_model_and_card
    from tfface.export.quantize import QuantizationConfig, converter_for, representative_from

    name = f"segmenter_{mode}"
    t0 = time.time()
    if mode == "int8":
        qcfg = QuantizationConfig.for_int8("float", len(rep))
        content = converter_for(model, qcfg, representative_from(rep)).convert()
        quant = {"mode": "int8", "io": "float", "calibration_samples": len(rep)}
    else:
        content = converter_for(model, QuantizationConfig.for_fp16()).convert()
        quant = {"mode": "fp16", "io": "float",
                 "note": "float16 weights, float32 compute on the CPU; for GPU delegates"}
    seconds = time.time() - t0
    tmp = os.path.join(args.out, f"{name}.tflite.tmp")
    with open(tmp, "wb") as f:
        f.write(content)
    runner = LiteRunner(tmp)

    def lite_predict(x):
        return np.concatenate([runner(x[i:i + 1]) for i in range(len(x))])

    quality_file = _scores(cfg, lite_predict, args.eval_dir, args.eval_count, names)
    log = [json.loads(line) for line in open(os.path.join(args.run, "train_log.jsonl"))]
    inp = tensor_entry(runner.inputs[0], "input")
    out = tensor_entry(runner.outputs[0], "output")
    out.update(layout="NHWC, 1 channel", value_range=[0.0, 1.0],
               denormalization={"formula": "probability that the pixel is occluded; "
                                "hole = p > 0.5"})
    card = {
        "format": "tfface-model-card/1",
        "name": name,
        "file": f"{name}.tflite",
        "task": "segment-occluder",
        "architecture": "unmask segmentation U-Net (tfface.models.unmask._seg_unet)",
        "parameters": int(model.count_params()),
        "inputs": [inp],
        "outputs": [out],
        "signature": "serving_default",
        "framing": "aligned face crop: the five landmarks mapped to tfface/faces/template.json "
                   "by a similarity transform (the framing of the training crops)",
        "quantization": quant,
        "training_data": {
            "source": "folder", "description": "real face photos (faces-train: CelebA test "
            "split, 453 people), damaged by tfface's occlusion synthesis",
            "image_size": cfg.image_size,
            "occlusions": _mixture(cfg),
            "clean_fraction": cfg.clean_fraction,
            "jitter": {"degrees": cfg.jitter_degrees, "scale": cfg.jitter_scale,
                       "shift": cfg.jitter_shift},
            "render_scale": cfg.render_scale,
            "photometric": cfg.photometric,
            "photo_conditions": cfg.photo_conditions,
            "held_out": "realmask_unseen (KN95 and cloth templates) and hand_unseen never "
                        "drawn in training (the facemask generator draws only the other "
                        "families' templates)" if "realmask" in cfg.occlusions else None,
            "init_from": init_note(cfg.init_from),
            "steps": int(log[-1]["step"]) if log else 0,
            "batch_size": train_batch,
            "cpu_minutes": round(float(log[-1]["minutes"]), 1) if log else None,
        },
        "quality": {
            "eval_data": f"{os.path.basename(os.path.normpath(args.eval_dir))}: people never "
                         f"seen in training; {args.eval_count} faces per occluder, no jitter",
            "metric": "per-image pixel accuracy and IoU of p > 0.5 against the synthesized "
                      "mask, averaged",
            "keras_float": quality_keras,
            f"tflite_{mode}": quality_file,
        },
        "size_bytes": len(content),
        "conversion_seconds": round(seconds, 1),
    }
    content = finish_card(content, card)
    os.remove(tmp)
    # Card first, model second, the card holding the model's hash (write_model_and_card).
    card = write_model_and_card(os.path.join(args.out, f"{name}.tflite"),
                                os.path.join(args.out, f"{name}.json"), content, card)
    _samples(args.out, cfg, name)
    return card


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


def _samples(dest: str, cfg, name: str = "segmenter_int8") -> None:
    """Astronaut (public domain) aligned crops with four occluders, and the file's outputs."""
    import tensorflow as tf
    from skimage import data

    from tfface.data import occlusion as occ
    from tfface.faces import align as al
    from tfface.faces import make_detector
    from tfface.imageio import to_float, to_uint8, write_image
    from tfface.lite import LiteRunner

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
    manifest = {"model": f"{name}.tflite", "card": f"{name}.json",
                "samples": entries,
                "sample_faces": "skimage.data.astronaut() (public domain), aligned, with "
                                "synthesized occluders",
                "expected_encoding": "expected PNG = round((p + 1) * 127.5) of the probability "
                                     "p (the harness's image mapping); target = the true hole",
                "tolerance": {"max_abs_levels": 3,
                              "note": "per-pixel difference (0..255) allowed between the "
                                      "expected PNG and a fresh run on another CPU / delegate"}}
    with open(os.path.join(dest, f"{name}_samples.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
