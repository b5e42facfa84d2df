"""Face coordinates from the five landmarks, for the occluders placed on the face."""

from __future__ import annotations

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf


def _face_frame(landmarks, size: int) -> dict[str, tf.Tensor]:
    """Face coordinates from the 5 landmarks: origin at the eyes' midpoint, ``a`` along
    the eye line (image left → right), ``b`` perpendicular to it (downwards), both in
    units of the eye distance ``d`` (so the eyes sit at ``a = ±0.5, b = 0``).

    Returns ``center`` (px ``[2]``), ``u``/``v`` (unit axes ``[2]``), ``d`` (px),
    ``nose``/``mouth`` (the ``b`` of the nose tip and the mouth-corner midpoint).
    """
    lm = tf.convert_to_tensor(landmarks, tf.float32) * float(size)
    center = (lm[0] + lm[1]) / 2.0
    eye = lm[1] - lm[0]
    d = tf.maximum(tf.norm(eye), 1e-3)
    u = eye / d
    v = tf.stack([-u[1], u[0]])
    mouth = tf.reduce_mean(lm[3:5], axis=0)
    return {
        "center": center, "u": u, "v": v, "d": d,
        "nose": tf.reduce_sum((lm[2] - center) * v) / d,
        "mouth": tf.reduce_sum((mouth - center) * v) / d,
    }


def _face_grid(frame, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Face coordinates ``(a, b)`` (float32 ``[S, S]``) of every pixel center."""
    p = tf.range(size, dtype=tf.float32) + 0.5
    x = p[None, :] - frame["center"][0]
    y = p[:, None] - frame["center"][1]
    a = (x * frame["u"][0] + y * frame["u"][1]) / frame["d"]
    b = (x * frame["v"][0] + y * frame["v"][1]) / frame["d"]
    return a, b


def _to_px(frame, a, b):
    """Face coordinates → pixel coordinates ``[..., 2]`` (x, y)."""
    a, b = tf.convert_to_tensor(a, tf.float32), tf.convert_to_tensor(b, tf.float32)
    return frame["center"] + (a[..., None] * frame["u"] + b[..., None] * frame["v"]) * frame["d"]


def _superellipse(x, y, m):
    """A cheap superellipse-like metric: ``1`` on a curve between the ellipse
    ``x² + y² = 1`` (``m = 0``) and the squircle ``x⁴ + y⁴ = 1`` (``m = 1``);
    squares and a square root instead of a tensor-exponent ``pow`` on the grid."""
    x2, y2 = tf.square(x), tf.square(y)
    return (1.0 - m) * (x2 + y2) + m * tf.sqrt(tf.square(x2) + tf.square(y2))


def _rotated(a, b, pa, pb, ang):
    """Coordinates of ``(a, b)`` in a frame at ``(pa, pb)`` rotated by ``ang``: ``(x, y)``
    with ``y`` pointing along ``ang`` from 'up' (``-b``)."""
    c, s = tf.cos(ang), tf.sin(ang)
    da, db = a - pa, b - pb
    return da * c + db * s, -da * s + db * c
