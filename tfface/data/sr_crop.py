"""Faces at every scale for super-resolution training: zoomed random crops (``data.sr_crop``).

By default an SR run's HR target is the whole aligned face (``data.image_size`` px), so
its model learns faces of one size. In a photo a face can be any size: a non-empty
``data.sr_crop`` (train split only; the eval split stays the whole aligned face, so
validation and ``pipelines.evaluate`` keep their meaning) makes every training target a
zoomed random crop instead (:func:`random_crop`):

* the source face is read at ``source_size`` px (instead of ``image_size``);
* a square window of ``image_size / zoom`` source px, ``zoom`` drawn log-uniformly from
  its ``[lo, hi]`` range (HR px per source px), is cut at a random place and resized to
  ``image_size`` (area when shrinking, bicubic when enlarging); a zoom below
  ``image_size / source_size`` is the whole face;
* with probability ``whole_prob`` the window is the whole face (the aligned task);
* the LR input is then made by :func:`tfface.data.degrade.degrade` with a downscale
  kernel drawn per element from ``downscale`` (for ``none`` and ``classic``).

With faces of about 180 px (box side) in 256 px sources and ``zoom`` 0.5-3, the HR
patch holds faces from about 90 px (whole, with background) to parts of faces 540 px
tall: at x4, LR faces from about 22 to 135 px. Above zoom 1 the target is the source
enlarged (its finest detail is the source's), which teaches the model to leave smooth
content smooth rather than to invent detail there.

Everything is stateless (seeds from the element seed), like :mod:`tfface.data.degrade`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.degrade import DOWNSCALE_METHODS, _as_float, _bernoulli, _seeds, _uniform

__all__ = ["CROP", "resolve_crop", "random_crop"]


CROP: dict[str, Any] = {
    "source_size": 256,
    "zoom": (0.5, 3.0),
    "whole_prob": 0.25,
    "downscale": ("area", "bicubic"),
}
"""Defaults of ``data.sr_crop`` (any key given turns the zoomed random crop on):
``source_size`` (side the source faces are read at), ``zoom`` ([lo, hi] HR px per
source px, drawn log-uniformly), ``whole_prob`` (probability of the whole face) and
``downscale`` (LR kernels, one drawn per element)."""


def resolve_crop(overrides: Mapping[str, Any] | None) -> dict | None:
    """``data.sr_crop`` with :data:`CROP`'s defaults filled in; ``None`` when empty (off).

    Raises:
        ValueError: unknown key (the message lists the valid ones) or a bad value.
    """
    if not overrides:
        return None
    unknown = sorted(set(overrides) - set(CROP))
    if unknown:
        raise ValueError(f"unknown data.sr_crop key(s) {unknown}; valid keys: "
                         f"{', '.join(sorted(CROP))}")
    opts = {**CROP, **dict(overrides)}
    size = opts["source_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"data.sr_crop source_size must be an integer >= 16, got {size!r}")
    zoom = opts["zoom"]
    if (not isinstance(zoom, (list, tuple)) or len(zoom) != 2
            or not all(isinstance(z, (int, float)) and not isinstance(z, bool) for z in zoom)
            or not 0 < float(zoom[0]) <= float(zoom[1])):
        raise ValueError(f"data.sr_crop zoom must be a [lo, hi] range with 0 < lo <= hi, "
                         f"got {zoom!r}")
    p = opts["whole_prob"]
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"data.sr_crop whole_prob must be a probability in [0, 1], got {p!r}")
    methods = opts["downscale"]
    methods = [methods] if isinstance(methods, str) else methods
    if (not isinstance(methods, (list, tuple)) or not methods
            or any(m not in DOWNSCALE_METHODS for m in methods)):
        raise ValueError(f"data.sr_crop downscale must list methods of {DOWNSCALE_METHODS}, "
                         f"got {opts['downscale']!r}")
    return {"source_size": size, "zoom": (float(zoom[0]), float(zoom[1])),
            "whole_prob": float(p), "downscale": tuple(methods)}


def random_crop(image, seed, size: int, crop: Mapping[str, Any]) -> tf.Tensor:
    """A zoomed random crop of a square face (``data.sr_crop``, see the module docstring).

    Args:
        image: uint8 or float ``[S, S, 3]`` in [0, 255], ``S`` static.
        seed: int tensor ``[2]``.
        size: side of the result (the HR patch, ``data.image_size``).
        crop: options resolved by :func:`resolve_crop`.

    Returns:
        float32 ``[size, size, 3]`` in [0, 255]: a window of ``size / zoom`` source px
        (at most the whole face; the whole face with probability ``whole_prob``) at a
        random place, resized to ``size`` (area when shrinking, bicubic when enlarging).
    """
    img = _as_float(image)
    side = img.shape[0]
    if side is None or img.shape[1] != side:
        raise ValueError(f"random_crop needs a static square image, got shape {img.shape}")
    s = _seeds(seed, 4)
    lo, hi = crop["zoom"]
    zoom = tf.exp(_uniform(s[1], math.log(lo), math.log(hi)))
    win = tf.clip_by_value(tf.cast(tf.round(size / zoom), tf.int32), 4, side)
    win = tf.where(_bernoulli(s[0], crop["whole_prob"]), side, win)
    room = tf.cast(side - win + 1, tf.float32)
    y0 = tf.cast(tf.random.stateless_uniform([], s[2]) * room, tf.int32)
    x0 = tf.cast(tf.random.stateless_uniform([], s[3]) * room, tf.int32)
    window = img[y0:y0 + win, x0:x0 + win]
    out = tf.cond(win > size,
                  lambda: tf.image.resize(window, [size, size], method="area"),
                  lambda: tf.image.resize(window, [size, size], method="bicubic"))
    return tf.ensure_shape(tf.clip_by_value(out, 0.0, 255.0), [size, size, 3])
