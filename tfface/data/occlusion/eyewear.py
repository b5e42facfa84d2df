"""Occluders over the eyes: sunglasses and a censor bar."""

from __future__ import annotations

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.occlusion.core import _randint, _split, register_occlusion
from tfface.data.occlusion.frame import _face_frame, _face_grid, _superellipse


def _palette_pick(seed, palette) -> tf.Tensor:
    return tf.gather(tf.constant(palette, tf.float32), _randint([], seed, 0, len(palette) - 1))


SUNGLASS_TINTS = ((18, 18, 20), (52, 38, 26), (28, 42, 32), (30, 36, 58), (70, 70, 74))
SUNGLASS_FRAMES = ((12, 12, 12), (176, 146, 78), (92, 58, 34), (196, 198, 204), (40, 40, 44))


def _sunglasses_geometry(seed, size: int, landmarks) -> dict[str, tf.Tensor]:
    s_rx, s_ry, s_p, s_low, s_t, s_cy, s_tint, s_frame = _split(seed, 8)
    f = _face_frame(landmarks, size)
    a, b = _face_grid(f, size)
    rx = tf.random.stateless_uniform([], s_rx, 0.38, 0.5)
    ry = tf.random.stateless_uniform([], s_ry, 0.26, 0.36)
    ry_low = ry * tf.random.stateless_uniform([], s_low, 1.0, 1.3)
    square = tf.random.stateless_uniform([], s_p, 0.0, 1.0)  # round → squarish lenses
    t = tf.random.stateless_uniform([], s_t, 0.03, 0.07)
    cy = tf.random.stateless_uniform([], s_cy, 0.0, 0.08)
    da = tf.abs(tf.abs(a) - 0.5)
    db = b - cy
    ryb = tf.where(db > 0, ry_low, ry)
    lens = _superellipse(da / rx, db / ryb, square) <= 1.0
    rim = (_superellipse(da / (rx + t), db / (ryb + t), square) <= 1.0) & ~lens
    bar_top = cy - 0.6 * ry
    bridge = (tf.abs(a) <= 0.5) & (b >= bar_top) & (b <= bar_top + 1.6 * t)
    temple = (tf.abs(a) >= 0.5) & (tf.abs(a) <= 1.12) & (b >= bar_top) & (b <= bar_top + 1.6 * t)
    return {
        "a": a, "b": b, "da": da, "db": db, "rx": rx, "ry": ry, "lens": lens,
        "frame": rim | ((bridge | temple) & ~lens), "s_tint": s_tint, "s_frame": s_frame,
    }


def sunglasses_fill(seed, size: int, image, landmarks) -> tf.Tensor:
    """Tinted lenses (vertical gradient, a soft highlight, 12 % of the eyes showing
    through) in a frame of one palette color."""
    g = _sunglasses_geometry(seed, size, landmarks)
    tint = _palette_pick(g["s_tint"], SUNGLASS_TINTS)
    frame = _palette_pick(g["s_frame"], SUNGLASS_FRAMES)
    grad = 1.25 - 0.5 * tf.clip_by_value((g["db"] / g["ry"] + 1.0) / 2.0, 0.0, 1.0)
    hi = 70.0 * tf.exp(
        -tf.square((g["da"] - 0.3 * g["rx"]) / (0.25 * g["rx"]))
        - tf.square((g["db"] + 0.45 * g["ry"]) / (0.2 * g["ry"]))
    )
    lens = tint * grad[:, :, None] + hi[:, :, None]
    lens = 0.88 * lens + 0.12 * tf.cast(image, tf.float32)
    rgb = tf.where(g["lens"][:, :, None], lens, frame * tf.ones([size, size, 1]))
    return tf.clip_by_value(rgb, 0.0, 255.0)


@register_occlusion("sunglasses", id=7, fill=sunglasses_fill)
def sunglasses(seed, size: int, landmarks) -> tf.Tensor:
    """Sunglasses over both eyes: two round-to-squarish lenses at the eye landmarks
    (half-width 0.38–0.50, half-height 0.26–0.36 (lower half up to 1.3× that) eye
    distances), a frame rim, a bridge and temples toward the ears. The default fill
    is the drawn glasses (:func:`sunglasses_fill`)."""
    g = _sunglasses_geometry(seed, size, landmarks)
    return tf.cast(g["lens"] | g["frame"], tf.float32)[:, :, None]


EYE_BAR_COLORS = ((0, 0, 0), (10, 10, 10), (24, 24, 24), (0, 0, 0))


def _eye_bar_geometry(seed, size: int, landmarks):
    s_w, s_up, s_down, s_col = _split(seed, 4)
    f = _face_frame(landmarks, size)
    a, b = _face_grid(f, size)
    hw = tf.random.stateless_uniform([], s_w, 0.85, 1.15)
    up = tf.random.stateless_uniform([], s_up, 0.16, 0.3)
    down = tf.random.stateless_uniform([], s_down, 0.16, 0.3)
    return (tf.abs(a) <= hw) & (b >= -up) & (b <= down), s_col


def eye_bar_fill(seed, size: int, image, landmarks) -> tf.Tensor:
    """A black (or near-black) censor bar."""
    del image, landmarks
    s_col = _split(seed, 4)[3]
    return tf.broadcast_to(_palette_pick(s_col, EYE_BAR_COLORS), [size, size, 3])


@register_occlusion("eye_bar", id=8, fill=eye_bar_fill)
def eye_bar(seed, size: int, landmarks) -> tf.Tensor:
    """A censor bar over both eyes, aligned with the eye line: half-length 0.85–1.15
    eye distances, 0.16–0.30 above and below the eye line."""
    m, _ = _eye_bar_geometry(seed, size, landmarks)
    return tf.cast(m, tf.float32)[:, :, None]
