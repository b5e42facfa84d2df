"""The rectangle generators and the CelebA-C fill.

``celeba_c`` (Pleško et al.'s random walk of thick lines from a landmark), ``boxes``
(Liu et al.'s random rectangles) and the N(128, 35) noise that fills their holes.
"""

from __future__ import annotations

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.occlusion.core import _randint, _seed, _split, register_occlusion
from tfface.data.occlusion.raster import rects_to_mask

CELEBA_C_REF_WIDTH = 178.0
"""Face width (px) at which Pleško et al. state the CelebA-C sizes; sizes scale with it."""
CELEBA_C_NUM_LINES = 30
CELEBA_C_SQUARE = 20
CELEBA_C_LENGTH = (10, 20)
CELEBA_C_WIDTH = (8, 13)

# Direction codes of the walk: 0 left (-x), 1 right (+x), 2 up (-y), 3 down (+y).
_DIR_DX = (-1.0, 1.0, 0.0, 0.0)
_DIR_DY = (0.0, 0.0, -1.0, 1.0)


def _fold(v, size: float):
    """Reflect coordinates into ``[0, size]`` (a triangle wave of period ``2·size``)."""
    return size - tf.abs(size - tf.math.floormod(v, 2.0 * size))


def celeba_c_walk(seed, size: int, landmarks) -> dict[str, tf.Tensor]:
    """The random walk of Pleško et al., Algorithm 1, in pixels of a ``size`` square.

    A start point is one of {left eye, right eye, nose, mouth} (mouth = mean of the
    two mouth corners); then 30 segments, each in a direction from {left, right,
    up, down} that differs from the previous one (uniform over the other three),
    with integer length 10–20 px and integer width 8–13 px at 178 px face width,
    scaled by ``size / 178``. Sub-choices use independent seeds.

    The walk is loop-free: direction ``i`` is ``(d0 + Σ_{j≤i}(1 + r_j)) mod 4`` with
    ``r_j`` uniform in {0, 1, 2}, which is exactly "uniform over the three other
    directions". A walk that leaves the image is reflected at the border (the
    triangle-wave fold of the cumulative positions equals a step-by-step mirror
    walk), so every segment stays in the image and the polyline stays connected.

    Returns:
        dict with ``landmark`` (int32 0..3), ``start`` (float32 ``[2]`` x, y px),
        ``directions`` (int32 ``[30]``), ``lengths`` and ``widths`` (float32 ``[30]``,
        px), ``points`` (float32 ``[31, 2]``, unfolded walk vertices, px) and
        ``scale`` (float32, ``size / 178``).
    """
    n = CELEBA_C_NUM_LINES
    s_pick, s_d0, s_turn, s_len, s_wid = _split(seed, 5)
    scale = size / CELEBA_C_REF_WIDTH
    lm = tf.convert_to_tensor(landmarks, tf.float32)
    starts = tf.concat([lm[:3], tf.reduce_mean(lm[3:5], axis=0, keepdims=True)], 0) * size
    pick = _randint([], s_pick, 0, 3)
    start = tf.gather(starts, pick)

    d0 = _randint([1], s_d0, 0, 3)
    turns = 1 + _randint([n - 1], s_turn, 0, 2)
    directions = tf.math.floormod(tf.cumsum(tf.concat([d0, turns], 0)), 4)
    lengths = tf.cast(_randint([n], s_len, *CELEBA_C_LENGTH), tf.float32) * scale
    widths = tf.cast(_randint([n], s_wid, *CELEBA_C_WIDTH), tf.float32) * scale

    steps = tf.stack(
        [tf.gather(_DIR_DX, directions), tf.gather(_DIR_DY, directions)], axis=1
    ) * lengths[:, None]
    points = tf.concat([start[None], start[None] + tf.cumsum(steps, axis=0)], 0)
    return {
        "landmark": pick,
        "start": start,
        "directions": directions,
        "lengths": lengths,
        "widths": widths,
        "points": points,
        "scale": tf.constant(scale, tf.float32),
    }


def _folded_interval(a, b, size: float):
    """Image of the 1-D interval between ``a`` and ``b`` under :func:`_fold`.

    The interval is shorter than ``size``, so it holds at most one fold point
    ``k·size``; the fold maps it to 0 (k even) or ``size`` (k odd), which then
    bounds the image instead of one endpoint.
    """
    lo_u, hi_u = tf.minimum(a, b), tf.maximum(a, b)
    fa, fb = _fold(lo_u, size), _fold(hi_u, size)
    lo, hi = tf.minimum(fa, fb), tf.maximum(fa, fb)
    k = tf.floor(hi_u / size)
    crosses = k * size > lo_u
    at_top = tf.equal(tf.math.floormod(k, 2.0), 1.0)
    hi = tf.where(crosses & at_top, size, hi)
    lo = tf.where(crosses & ~at_top, 0.0, lo)
    return lo, hi


@register_occlusion("celeba_c", id=0)
def celeba_c(seed, size: int, landmarks) -> tf.Tensor:
    """CelebA-C occlusion (Pleško et al., Algorithm 1): a 20 px square on a landmark
    and 30 connected thick axis-aligned lines walking from it. See :func:`celeba_c_walk`.

    Segments are drawn as rectangles extended by half the width at both ends, so
    consecutive segments join without gaps (square caps and joins).
    """
    walk = celeba_c_walk(seed, size, landmarks)
    fsize = float(size)
    p0, p1 = walk["points"][:-1], walk["points"][1:]
    x0, x1 = _folded_interval(p0[:, 0], p1[:, 0], fsize)
    y0, y1 = _folded_interval(p0[:, 1], p1[:, 1], fsize)
    half = walk["widths"] / 2.0
    sq = CELEBA_C_SQUARE * walk["scale"] / 2.0
    start = walk["start"]
    x0 = tf.concat([x0 - half, [start[0] - sq]], 0)
    x1 = tf.concat([x1 + half, [start[0] + sq]], 0)
    y0 = tf.concat([y0 - half, [start[1] - sq]], 0)
    y1 = tf.concat([y1 + half, [start[1] + sq]], 0)
    return rects_to_mask(x0, x1, y0, y1, size)


BOXES_MAX = 4
BOXES_SIDE = (0.10, 0.50)


@register_occlusion("boxes", id=1)
def boxes(seed, size: int, landmarks) -> tf.Tensor:
    """Random rectangles (Liu et al.): 1–4 boxes, each side an integer number of
    pixels in 10–50 % of the image side, placed uniformly fully inside the image.
    ``landmarks`` is unused (boxes fall anywhere)."""
    del landmarks
    s_n, s_w, s_h, s_x, s_y = _split(seed, 5)
    lo = max(1, round(BOXES_SIDE[0] * size))
    hi = max(lo, int(BOXES_SIDE[1] * size))
    count = _randint([], s_n, 1, BOXES_MAX)
    w = _randint([BOXES_MAX], s_w, lo, hi)
    h = _randint([BOXES_MAX], s_h, lo, hi)
    # Uniform integer offsets in [0, size - side]: floor(u * (size - side + 1)).
    ux = tf.random.stateless_uniform([BOXES_MAX], s_x)
    uy = tf.random.stateless_uniform([BOXES_MAX], s_y)
    wf, hf = tf.cast(w, tf.float32), tf.cast(h, tf.float32)
    x = tf.floor(ux * (size - wf + 1.0))
    y = tf.floor(uy * (size - hf + 1.0))
    active = tf.range(BOXES_MAX) < count
    return rects_to_mask(x, x + wf, y, y + hf, size, active=active)


NOISE_MEAN = 128.0
NOISE_STD = 35.0
_NOISE_TABLE_BITS = 16
_noise_table: tf.Tensor | None = None


def _quantile_table() -> tf.Tensor:
    global _noise_table
    if _noise_table is None:
        # Built eagerly once (also when first needed while tracing a graph) and
        # captured as a constant input by every function that uses it.
        with tf.init_scope():
            n = 2**_NOISE_TABLE_BITS
            p = (tf.range(n, dtype=tf.float64) + 0.5) / n
            q = NOISE_MEAN + NOISE_STD * tf.math.ndtri(p)
            _noise_table = tf.cast(tf.clip_by_value(q, 0.0, 255.0), tf.float32)
    return _noise_table


def noise_values(seed, count) -> tf.Tensor:
    """``count`` RGB samples of N(128, 35) clipped to [0, 255]: float32 ``[count, 3]``.

    Sampled by inverse CDF from raw 16-bit uniforms (a table of 65536 normal
    quantiles): about twice as fast on CPU as ``stateless_normal`` (Box-Muller), and
    the distribution is the normal to 16-bit quantile resolution (tails beyond
    ±4.3σ are cut, which the ±3.66σ clip does anyway). ``count`` may be a tensor.
    """
    n = tf.cast(count, tf.int32) * 3
    raw = tf.random.stateless_uniform(
        [(n + 1) // 2], _seed(seed), minval=None, maxval=None, dtype=tf.uint32
    )
    idx = tf.reshape(tf.bitcast(raw, tf.uint16), [-1])[:n]
    return tf.reshape(tf.gather(_quantile_table(), tf.cast(idx, tf.int32)), [-1, 3])


def noise_fill(seed, size: int) -> tf.Tensor:
    """RGB Gaussian noise N(128, 35) clipped to [0, 255], float32 ``[size, size, 3]``
    (the CelebA-C fill): :func:`noise_values` for every pixel in row-major order.

    :func:`occlude` draws the same values for hole pixels only (the ``k``-th hole
    pixel in row-major order gets the ``k``-th sample), which is much cheaper.
    """
    return tf.reshape(noise_values(seed, size * size), [size, size, 3])
