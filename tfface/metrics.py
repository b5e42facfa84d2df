"""Image-quality metrics.

Convention (stated once, used everywhere): images are compared as 8-bit RGB, i.e.
model outputs in [-1, 1] are mapped to [0, 255], rounded and clipped exactly as an
app would display them, then PSNR uses MAX = 255 and SSIM the standard Gaussian
11×11 window (``tf.image.ssim``) on all three channels. L1 is the mean absolute
error in [0, 1] units.
"""

from __future__ import annotations

import tensorflow as tf


def to_uint8_levels(x: tf.Tensor) -> tf.Tensor:
    """[-1, 1] float → float32 holding the integer pixel values 0..255."""
    return tf.clip_by_value(tf.round((tf.cast(x, tf.float32) + 1.0) * 127.5), 0.0, 255.0)


def psnr(target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    """Per-image PSNR in dB on 8-bit RGB; identical images give +inf, capped at 100 dB."""
    v = tf.image.psnr(to_uint8_levels(target), to_uint8_levels(pred), max_val=255.0)
    return tf.minimum(v, 100.0)


def ssim(target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    """Per-image SSIM on 8-bit RGB (Gaussian window 11, sigma 1.5)."""
    return tf.image.ssim(to_uint8_levels(target), to_uint8_levels(pred), max_val=255.0)


def l1(target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    """Per-image mean absolute error in [0, 1] units."""
    d = tf.abs(to_uint8_levels(target) - to_uint8_levels(pred)) / 255.0
    return tf.reduce_mean(d, axis=[1, 2, 3])


METRICS = {"psnr": psnr, "ssim": ssim, "l1": l1}
