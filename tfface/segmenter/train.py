"""Training the occluder segmenter: resumable, one writer per run folder, stopped on a
non-finite loss.

:func:`train_segmenter` trains (or resumes) a run in its folder with what every run of
the project has:

* the folder's **run lock** (:mod:`tfface.runlock`): a second training on the same
  folder is refused with a message naming the process that holds it, and changes
  nothing;
* **atomic writes** (:mod:`tfface.fileio`): ``segmenter.json``, the weights and the
  training log appear complete or not at all; checkpoints (``ckpt/``) are written by
  TensorFlow under temporary names and renamed when complete;
* a **finite check**: the first NaN/Inf loss stops the run with
  :class:`SegmenterDiverged`, before anything of that step is saved, so the last
  checkpoint and weights stay the last good ones.

It checkpoints every ``save_every`` steps and resumes from the last checkpoint; it
stops after ``steps`` or ``max_minutes``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict
from typing import Any

import numpy as np

import tfface  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tensorflow as tf

from tfface import keras
from tfface.fileio import atomic_path, atomic_write
from tfface.metrics import mask_scores
from tfface.runlock import DirLock
from tfface.segmenter.data import segmenter_dataset
from tfface.segmenter.model import (SegmenterConfig, build_segmenter, init_from_tflite,
                                    load_segmenter, segmenter_loss, training_mixture)

logger = logging.getLogger(__name__)

__all__ = ["SegmenterDiverged", "check_settings", "train_segmenter"]


class SegmenterDiverged(ValueError):
    """The training loss became NaN or Inf; the message says at which step and what is
    kept."""


def check_settings(cfg: SegmenterConfig) -> None:
    """Bad settings: one clear error before anything is written or built.

    Raises:
        ValueError: a negative warm-up or photo-conditions scale, a clean fraction
            outside [0, 1), or a held-out generator in the mixture.
    """
    if cfg.lr_warmup < 0 or cfg.photo_conditions < 0:
        raise ValueError(f"--lr-warmup and --photo-conditions must be >= 0, got "
                         f"{cfg.lr_warmup} and {cfg.photo_conditions}")
    if cfg.far_weight < 0.0 or cfg.far_margin < 0:
        raise ValueError(f"--far-weight and --far-margin must be >= 0, got {cfg.far_weight} "
                         f"and {cfg.far_margin}")
    if not 0.0 <= cfg.clean_fraction < 1.0:
        raise ValueError(f"--clean-fraction must be in [0, 1), got {cfg.clean_fraction}")
    training_mixture(cfg)  # a held-out generator in the mixture


def train_segmenter(cfg: SegmenterConfig, workdir: str, *, max_minutes: float | None = None,
                    log_every: int = 50) -> dict[str, Any]:
    """Train (or resume) a segmenter in ``workdir``; returns the last logged figures.

    Writes ``segmenter.json`` (the config), ``ckpt/`` (model + optimizer + step),
    ``segmenter.weights.h5`` (the latest weights) and ``train_log.jsonl``, holding the
    folder's run lock throughout (see the module docstring).

    Raises:
        ValueError: bad settings (:func:`check_settings`), nothing written.
        tfface.runlock.DirBusyError: another process trains in ``workdir``.
        SegmenterDiverged: the loss became NaN/Inf.
    """
    check_settings(cfg)
    with DirLock(workdir, "train", what="segmenter run folder",
                 hint="or choose another --out"):
        return _train(cfg, workdir, max_minutes, log_every)


def _schedule(cfg: SegmenterConfig):
    if cfg.lr_warmup > 0:
        return keras.optimizers.schedules.CosineDecay(
            0.0, max(cfg.steps - cfg.lr_warmup, 1), alpha=0.05, warmup_target=cfg.lr,
            warmup_steps=cfg.lr_warmup)
    return keras.optimizers.schedules.CosineDecay(cfg.lr, cfg.steps, alpha=0.05)


def _train(cfg: SegmenterConfig, workdir: str, max_minutes: float | None,
           log_every: int) -> dict[str, Any]:
    atomic_write(os.path.join(workdir, "segmenter.json"), json.dumps(asdict(cfg), indent=2))
    model = build_segmenter(cfg.image_size, cfg.filters)
    opt = keras.optimizers.Adam(_schedule(cfg))
    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(model=model, opt=opt, step=step)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(workdir, "ckpt"), max_to_keep=2)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        logger.info("resumed at step %d", int(step))
    elif cfg.init_from:
        _init_weights(model, cfg)
    start = int(step)
    ds = segmenter_dataset(cfg, "train", start_step=start)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            loss = segmenter_loss(y, p, cfg.far_weight, cfg.far_margin)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        acc, iou = mask_scores(y, p, per_image=False)
        return loss, acc, iou

    weights_path = os.path.join(workdir, "segmenter.weights.h5")

    def save():
        manager.save()
        with atomic_path(weights_path) as tmp:
            model.save_weights(tmp)

    log_path = os.path.join(workdir, "train_log.jsonl")
    log_lines = _read_lines(log_path)
    t0 = time.time()
    last: dict[str, Any] = {}
    sums = np.zeros(3)
    n = 0
    for x, y in ds:
        if int(step) >= cfg.steps:
            break
        loss, acc, iou = train_step(x, y)
        if not math.isfinite(float(loss)):
            raise SegmenterDiverged(
                f"the loss became NaN/Inf at step {int(step) + 1}; nothing of that step was "
                f"saved, the last checkpoint ({manager.latest_checkpoint or 'none'}) is kept: "
                "resume with a lower --lr (or check --data-dir)")
        step.assign_add(1)
        sums += [float(loss), float(acc), float(iou)]
        n += 1
        s = int(step)
        if s % log_every == 0:
            last = {"step": s, "loss": sums[0] / n, "acc": sums[1] / n, "iou": sums[2] / n,
                    "minutes": (time.time() - t0) / 60.0}
            log_lines.append(json.dumps(last))
            atomic_write(log_path, "".join(line + "\n" for line in log_lines))
            logger.info("%s", last)
            sums[:] = 0
            n = 0
        out_of_time = max_minutes is not None and (time.time() - t0) / 60.0 >= max_minutes
        if s % cfg.save_every == 0 or out_of_time or s >= cfg.steps:
            save()
        if out_of_time:
            logger.info("stopping after %.1f minutes at step %d", max_minutes, s)
            break
    save()
    return last


def _read_lines(path: str) -> list[str]:
    """The lines of a run's training log so far (none for a new run)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def _init_weights(model, cfg: SegmenterConfig) -> None:
    """A new run's starting weights: ``cfg.init_from`` (a run folder or a .tflite)."""
    src = cfg.init_from
    if os.path.isdir(src):
        other, ocfg = load_segmenter(src)
        if [int(f) for f in ocfg.filters] != [int(f) for f in cfg.filters]:
            raise ValueError(f"--init-from {src} has filters {ocfg.filters}, this run "
                             f"{cfg.filters}")
        model.set_weights(other.get_weights())
    else:
        calib = next(iter(segmenter_dataset(cfg, "train")))[0]
        init_from_tflite(model, src, calib.numpy())
    logger.info("weights initialised from %s", src)
