"""The tf.data pipeline: clean faces from a source → training/eval pairs in [-1, 1].

:func:`make_dataset` is the one way to get model-ready batches; calibration data for
TFLite quantization (:func:`representative_batches`) and evaluation come from it
too, so every consumer sees identically synthesized and preprocessed inputs.

Determinism: the source stream is reproducible (it shuffles statelessly per epoch),
and every random choice of synthesis uses a seed derived from
``(cfg.data.seed, split, element index)`` (:func:`element_seed`), so the eval split
is identical bit for bit across calls and a resumed training run continues the
stream without replaying it. No shuffle buffer is added here.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.config import Config
from tfface.data import occlusion as occ

SPLITS = ("train", "eval")
SPLIT_SALT = {"train": 0x7472, "eval": 0x6576}
"""Mixed into element seeds so train and eval synthesis never share random streams."""


def element_seed(global_seed: int, split: str, index) -> tf.Tensor:
    """Stateless seed (int64 ``[2]``) of one element: fold ``index`` into
    ``(global_seed, split salt)``."""
    base = tf.constant([int(global_seed), SPLIT_SALT[split]], tf.int64)
    return tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int64))


def model_input_key(cfg: Config) -> str:
    """Name of the element field a model of ``cfg.data.task`` takes as input."""
    return "lr" if cfg.data.task == "sr" else "occluded"


def _to_unit(x) -> tf.Tensor:
    """[0, 255] → [-1, 1] (float32)."""
    return tf.cast(x, tf.float32) / 127.5 - 1.0


def _make_sr(image, scale: int) -> tf.Tensor:
    """Low-resolution input: area (box) downscale by ``scale``, float32 in [0, 255].

    A later issue replaces this with realistic degradations (``degrade.py``).
    """
    size = image.shape[0]
    lr = tf.image.resize(tf.cast(image, tf.float32), [size // scale, size // scale], method="area")
    return tf.clip_by_value(lr, 0.0, 255.0)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got '{split}'")


def make_dataset(
    cfg: Config,
    split: str,
    *,
    batch_size: int | None = None,
    start_step: int = 0,
    drop_remainder: bool | None = None,
) -> tf.data.Dataset:
    """Batches of model-ready faces.

    Args:
        cfg: the run's config (``cfg.data`` chooses source, size, task, occlusion mixture
            and seed; ``cfg.train.batch_size`` is the default batch size).
        split: ``"train"`` (infinite, reproducible) or ``"eval"`` (finite, fixed order).
        batch_size: defaults to ``cfg.train.batch_size``.
        start_step: train only: skip this many batches of the stream without reading
            them (the source starts at element ``start_step * batch_size``), so a
            resumed run continues where it stopped.
        drop_remainder: defaults to True for train and False for eval.

    Returns:
        A dataset of dicts. Inpainting: ``clean`` and ``occluded`` (float32
        ``[B, S, S, 3]`` in [-1, 1]), ``mask`` (float32 ``[B, S, S, 1]``, 1 = hole),
        ``occlusion`` (int32 ``[B]``, ids of :data:`tfface.data.occlusion.OCCLUSION_IDS`)
        and ``index`` (int64 ``[B]``). Super-resolution: ``clean``, ``lr`` (float32
        ``[B, S/scale, S/scale, 3]`` in [-1, 1]) and ``index``.
    """
    from tfface.data.sources import make_source

    _check_split(split)
    d = cfg.data
    batch_size = int(batch_size or cfg.train.batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if start_step < 0:
        raise ValueError(f"start_step must be >= 0, got {start_step}")
    if start_step and split != "train":
        raise ValueError("start_step is only meaningful for the train split")
    if drop_remainder is None:
        drop_remainder = split == "train"
    size = int(d.image_size)

    if d.task == "sr":
        scale = int(d.scale)
        if scale < 1 or size % scale:
            raise ValueError(f"data.scale must divide data.image_size, got {scale} and {size}")

        def synth(el):
            image = tf.ensure_shape(el["image"], [size, size, 3])
            return {
                "clean": image,
                "lr": _make_sr(image, scale),
                "index": tf.cast(el["index"], tf.int64),
            }

        def normalize(batch):
            return {**batch, "clean": _to_unit(batch["clean"]), "lr": _to_unit(batch["lr"])}

    elif d.task == "inpaint":
        mixture = d.occlusions if split == "train" else (d.eval_occlusions or d.occlusions)
        mixture = occ.check_mixture(mixture)

        def synth(el):
            image = tf.ensure_shape(el["image"], [size, size, 3])
            index = tf.cast(el["index"], tf.int64)
            out = occ.occlude(image, el["landmarks"], element_seed(d.seed, split, index), mixture)
            return {
                "clean": image,
                "occluded": out["occluded"],
                "mask": out["mask"],
                "occlusion": out["occlusion"],
                "index": index,
            }

        def normalize(batch):
            return {
                **batch,
                "clean": _to_unit(batch["clean"]),
                "occluded": _to_unit(batch["occluded"]),
            }

    else:
        raise ValueError(f"data.task must be 'inpaint' or 'sr', got '{d.task}'")

    source = make_source(d)
    ds = source.dataset(split, start=start_step * batch_size if split == "train" else 0)
    ds = ds.map(synth, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    # [0, 255] → [-1, 1] once per batch: fewer, larger ops than per element, and the
    # clean image travels through batching as uint8 (a quarter of the bytes).
    ds = ds.map(normalize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


MIN_REPRESENTATIVE = 100


def representative_batches(
    cfg: Config, n: int = 200, split: str = "train", *, allow_small: bool = False
) -> Iterator[np.ndarray]:
    """Model inputs for TFLite calibration: ``n`` float32 arrays ``[1, S', S', 3]``.

    They come from :func:`make_dataset` (real faces, synthesized and normalized exactly
    as in training, never random tensors) and are reproducible: the same config gives
    the same ``n`` inputs. The input is ``occluded`` for inpainting and ``lr`` for
    super-resolution (:func:`model_input_key`). Use with the TFLite converter as
    ``converter.representative_dataset = lambda: ([x] for x in representative_batches(cfg))``.

    Raises:
        ValueError: ``n < 100`` (too few images for stable int8 calibration) unless
            ``allow_small``; or ``split == "eval"`` with ``n > cfg.data.eval_count``.
    """
    _check_split(split)
    if n < 1 or (n < MIN_REPRESENTATIVE and not allow_small):
        raise ValueError(
            f"representative data needs at least {MIN_REPRESENTATIVE} images for stable int8 "
            f"calibration, got n={n} (pass allow_small=True only in tests)"
        )
    if split == "eval" and n > cfg.data.eval_count:
        raise ValueError(
            f"the eval split holds {cfg.data.eval_count} faces, fewer than n={n}; "
            f"use split='train' or a larger data.eval_count"
        )
    key = model_input_key(cfg)
    ds = make_dataset(cfg, split, batch_size=1, drop_remainder=False).take(n)
    return (el[key].numpy() for el in ds)
