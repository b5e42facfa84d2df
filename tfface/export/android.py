"""Android assets: a converted file, its card, sample inputs and the outputs it gives.

:func:`export_android` copies a ``.tflite`` file and its card into
``android_demo_assets/<arch>/`` with sample PNGs and ``<stem>_samples.json``, which an
app (and ``tests/test_android_assets.py``, through
:func:`tfface.export.validate.check_samples`) re-runs to check the file on its CPU.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from typing import Any

import numpy as np

from tfface.data.sources.synthetic import banner_silenced
from tfface.export.convert import Converted, fidelity_batch
from tfface.fileio import atomic_write
from tfface.imageio import to_float, to_uint8, write_image
from tfface.lite import LiteRunner
from tfface.rundir import generator_inputs

ANDROID_DIR = "android_demo_assets"
ANDROID_SAMPLES = 4


def android_folder(cfg) -> str:
    """The folder of a model's files under ``android_demo_assets/``: its architecture
    (``vnet``, ``srgan``) when its input is the shipped file's (a 128 px face; a 32 px
    low-resolution face for SR), else with what differs: ``_x<scale>`` for a
    super-resolution model of another scale than x4 (``srgan_x2``), ``_lr<px>`` for one
    of another input size (``srgan_lr64``) and the input size for a restorer of another
    size (``vnet256``, ``vnet64``). The bare and sized folders of the shipped files are
    where those files are rebuilt; ``tflite.convert --android`` refuses a folder that
    already holds ``.tflite`` files unless ``--replace-assets`` is given."""
    if cfg.data.task == "sr":
        scale = int(cfg.data.scale)
        lr = int(cfg.data.image_size) // scale
        return (cfg.model.arch + ("" if scale == 4 else f"_x{scale}")
                + ("" if lr == 32 else f"_lr{lr}"))
    size = int(cfg.data.image_size)
    return cfg.model.arch + ("" if size == 128 else str(size))


def export_android(converted: Converted, cfg, assets_dir: str = ANDROID_DIR,
                   samples: int = ANDROID_SAMPLES, folder: str | None = None) -> str:
    """Copy a file and its card into ``assets_dir/<arch>/`` (:func:`android_folder`, or
    ``folder``: a second file of the same kind, e.g. ``srgan_realism``) with sample inputs
    and the outputs the file gives for them (PNG), so an app (and the asset test) can
    check it.

    Expected outputs are computed from the *saved* 8-bit inputs, exactly what an app
    feeding those PNGs gets. ``samples.json`` lists the files and the tolerance. The
    sample faces are always the built-in synthetic ones (same synthesis of damage), so
    the folder never redistributes photos a training set may not allow to share.
    """
    dest = os.path.join(assets_dir, folder or android_folder(cfg))
    os.makedirs(os.path.join(dest, "samples"), exist_ok=True)
    for src in (converted.path, converted.card_path):
        shutil.copy(src, os.path.join(dest, os.path.basename(src)))
    stem = os.path.splitext(os.path.basename(converted.path))[0]
    sample_cfg = copy.deepcopy(cfg)
    sample_cfg.data.source, sample_cfg.data.data_dir = "synthetic", None
    with banner_silenced():  # the sample faces are synthetic on purpose
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
    write_samples_manifest(os.path.join(dest, f"{stem}_samples.json"), samples_manifest(
        os.path.basename(converted.path), os.path.basename(converted.card_path), entries,
        "built-in synthetic faces (redistributable), damaged by the run's eval synthesis"))
    return dest


ANDROID_TOLERANCE_LEVELS = 3


def samples_manifest(model: str, card: str, entries: list[dict[str, Any]], sample_faces: str,
                     **extra: Any) -> dict[str, Any]:
    """``<stem>_samples.json`` of a shipped file: the file, its card, the samples (inputs,
    expected output, target), where the sample faces come from, any ``extra`` fields and
    the tolerance an app's check allows."""
    return {"model": model, "card": card, "samples": entries, "sample_faces": sample_faces,
            **extra,
            "tolerance": {"max_abs_levels": ANDROID_TOLERANCE_LEVELS,
                          "note": "per-pixel difference (0..255) allowed between the expected "
                                  "PNG and a fresh run on another CPU / delegate"}}


def write_samples_manifest(path: str, manifest: dict[str, Any]) -> str:
    """Write a samples manifest atomically; returns its path."""
    atomic_write(path, json.dumps(manifest, indent=2))
    return path
