"""Conditions of the whole photo (face and occluder alike): low light, grayscale,
slight blur, sensor noise.

:func:`photo_conditions` applies one random set of conditions identically to several
images of the same shape, e.g. the clean face and its occluded copy, so a
restoration target keeps the photo's conditions and only the occluder differs. It is
a pure, stateless op of its seed, like the generators.
"""

from __future__ import annotations

import math
from typing import Sequence

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.occlusion.appearance import luminance
import functools

from tfface.data.occlusion.core import _seed, _split, graph_stable

PHOTO_CONDITIONS = ("low_light", "grayscale", "blur", "noise")
PHOTO_CONDITION_PROBA = (0.35, 0.2, 0.35, 0.3)
"""Chance of each condition (independently)."""
BLUR_SIGMA = (0.4, 1.2)
"""Gaussian blur sigma, pixels at 128 px (scaled with the image side)."""


def _gauss_blur(x, sigma, radius: int) -> tf.Tensor:
    t = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-0.5 * tf.square(t / sigma))
    k = k / tf.reduce_sum(k)
    xp = tf.pad(x[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    kx = tf.tile(k[None, :, None, None], [1, 1, 3, 1])
    ky = tf.tile(k[:, None, None, None], [1, 1, 3, 1])
    y = tf.nn.depthwise_conv2d(xp, kx, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(y, ky, [1, 1, 1, 1], "VALID")[0]


def photo_conditions(seed, images: Sequence, proba: Sequence[float] = PHOTO_CONDITION_PROBA
                     ) -> tuple[list[tf.Tensor], dict[str, tf.Tensor]]:
    """Apply the same random photo conditions to each of ``images``.

    Args:
        seed: int tensor ``[2]``.
        images: float (or uint8) ``[S, S, 3]`` tensors in [0, 255], one shape.
        proba: chance of each of :data:`PHOTO_CONDITIONS`.

    Returns:
        ``(images float32 in [0, 255], {condition: bool tensor})``. Low light: gain
        0.3–0.65 and gamma 1.0–1.4 (a warm tungsten cast in 40 % of them); grayscale:
        BT.601 luma in all channels; blur: Gaussian, sigma :data:`BLUR_SIGMA` at 128 px;
        noise: Gaussian, sigma 2–8 levels (grey on a grayscale photo), the same
        pattern on every image.
    """
    images = [tf.cast(tf.convert_to_tensor(x), tf.float32) for x in images]
    out, on = _conditions(tuple(float(p) for p in proba))(seed, int(images[0].shape[0]), *images)
    return list(out), dict(on)


@functools.lru_cache(maxsize=None)
def _conditions(proba: tuple[float, ...]):
    return graph_stable(lambda seed, size, *images: _apply(seed, size, images, proba))


def _apply(seed, size: int, images, proba):
    s = _split(tf.random.experimental.stateless_fold_in(_seed(seed), 0x9407), 9)
    on = {k: tf.random.stateless_uniform([], s[i]) < p
          for i, (k, p) in enumerate(zip(PHOTO_CONDITIONS, proba))}
    gain = tf.random.stateless_uniform([], s[4], 0.3, 0.65)
    gamma = tf.random.stateless_uniform([], s[5], 1.0, 1.4)
    warm = tf.where(tf.random.stateless_uniform([], s[6]) < 0.4, tf.constant([1.0, 0.9, 0.74]),
                    tf.ones([3]))
    scale = size / 128.0
    sigma = tf.random.stateless_uniform([], s[7], BLUR_SIGMA[0], BLUR_SIGMA[1]) * scale
    radius = max(1, int(math.ceil(3 * BLUR_SIGMA[1] * scale)))
    noise_sd = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(s[8], 1),
                                           2.0, 8.0)
    noise = tf.random.stateless_normal([size, size, 3], s[8]) * noise_sd
    noise = tf.where(on["grayscale"], noise[..., :1] * tf.ones([3]), noise)  # grey grain
    gain_rgb = warm * (255.0 * gain)
    out = []
    for x in images:
        x = tf.where(on["low_light"], tf.pow(x * (1 / 255.0), gamma) * gain_rgb, x)
        y = luminance(x)
        x = tf.where(on["grayscale"], tf.tile(y[..., None], [1, 1, 3]), x)
        x = tf.cond(on["blur"], lambda x=x: _gauss_blur(x, sigma, radius), lambda x=x: x)
        x = tf.where(on["noise"], x + noise, x)
        out.append(tf.clip_by_value(x, 0.0, 255.0))
    return out, on
