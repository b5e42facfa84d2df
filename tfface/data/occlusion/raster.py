"""Rasterizing shapes into masks: unions of rectangles, row spans of convex shapes.

All current shapes are unions of axis-aligned rectangles (:func:`rects_to_mask`) or of
convex shapes given by one interval per pixel row (:func:`spans_to_mask`: capsules,
rectangles), with a hole-area cap (:func:`cap_area`).
"""

from __future__ import annotations

import math

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf


def rects_to_mask(x0, x1, y0, y1, size: int, active=None) -> tf.Tensor:
    """Union of axis-aligned rectangles ``[x0, x1] × [y0, y1]`` (pixel units) as a mask.

    Args:
        x0, x1, y0, y1: float32 ``[N]`` rectangle bounds in pixels (origin at the
            top-left corner of the image, so pixel ``j``'s center is ``j + 0.5``).
        size: side of the square output.
        active: optional bool ``[N]``; inactive rectangles are ignored.

    Returns:
        float32 ``[size, size, 1]``, exactly 0 or 1.
    """
    centers = tf.range(size, dtype=tf.float32) + 0.5
    cols = (centers >= x0[:, None]) & (centers <= x1[:, None])  # [N, S]
    rows = (centers >= y0[:, None]) & (centers <= y1[:, None])  # [N, S]
    if active is not None:
        rows &= active[:, None]
    hits = tf.matmul(tf.cast(rows, tf.float32), tf.cast(cols, tf.float32), transpose_a=True)
    return tf.cast(hits > 0.5, tf.float32)[:, :, None]


_FAR = 1e9  # an "empty" interval is (_FAR, -_FAR)


def spans_to_mask(xl, xr, weight, size: int) -> tf.Tensor:
    """Rasterize row spans of convex shapes: a coverage count ``int32 [size, size]``.

    Every convex shape meets a pixel row in one interval, so a union of ``N`` convex
    shapes is given by per-row intervals ``[xl, xr]`` (float32 ``[N, size]``, pixel
    units; empty when ``xl > xr``). Each non-empty interval adds ``+w`` at its first
    column and ``-w`` one past its last column of a ``[size, size + 1]`` difference
    array (one ``unsorted_segment_sum``), and a cumulative sum along the row gives the
    count of shapes covering each pixel: ``O(N·S + S²)`` work instead of the
    ``O(N·S²)`` of evaluating every shape on the whole grid. A pixel is covered when
    its center ``(x + 0.5, y + 0.5)`` is (the intervals are taken at ``y + 0.5``).

    Args:
        xl, xr: float32 ``[N, size]`` interval bounds per shape and row.
        weight: int32 ``[N]`` (0 drops a shape, 1 keeps it).
        size: side of the square.
    """
    a = tf.clip_by_value(tf.math.ceil(xl - 0.5), 0.0, float(size))
    b = tf.clip_by_value(tf.math.floor(xr - 0.5) + 1.0, 0.0, float(size))
    w = tf.where(b > a, weight[:, None], 0)
    base = tf.range(size, dtype=tf.int32)[None, :] * (size + 1)
    idx = tf.concat(
        [tf.reshape(base + tf.cast(a, tf.int32), [-1]), tf.reshape(base + tf.cast(b, tf.int32), [-1])],
        0,
    )
    upd = tf.concat([tf.reshape(w, [-1]), -tf.reshape(w, [-1])], 0)
    diff = tf.math.unsorted_segment_sum(upd, idx, size * (size + 1))
    return tf.cumsum(tf.reshape(diff, [size, size + 1]), axis=1)[:, :size]


def _linear_span(coef, const, lo, hi):
    """Solutions ``x`` of ``lo <= coef·x + const <= hi`` as an interval (broadcasting)."""
    safe = tf.where(tf.abs(coef) > 1e-6, coef, 1.0)
    x1, x2 = (lo - const) / safe, (hi - const) / safe
    flat = tf.abs(coef) <= 1e-6
    inside = (const >= lo) & (const <= hi)
    xlo = tf.where(flat, tf.where(inside, -_FAR, _FAR), tf.minimum(x1, x2))
    xhi = tf.where(flat, tf.where(inside, _FAR, -_FAR), tf.maximum(x1, x2))
    return xlo, xhi


def capsule_spans(x0, y0, x1, y1, radius, size: int):
    """Row spans of capsules (segments ``(x0, y0)–(x1, y1)`` thickened by ``radius``,
    round caps, as ``cv2.line`` draws a thick line): float32 ``[N, size]`` each.

    A capsule is the union of its two end disks and the swept band; its row slice is
    one interval (the capsule is convex), so it is the hull of the three slices.
    """
    y = tf.range(size, dtype=tf.float32)[None, :] + 0.5
    x0, y0, x1, y1, r = (t[:, None] for t in (x0, y0, x1, y1, radius))

    def disk(cx, cy):
        h2 = r * r - tf.square(y - cy)
        h = tf.sqrt(tf.maximum(h2, 0.0))
        return tf.where(h2 >= 0, cx - h, _FAR), tf.where(h2 >= 0, cx + h, -_FAR)

    dx, dy = x1 - x0, y1 - y0
    length = tf.sqrt(dx * dx + dy * dy)
    ok = length > 1e-6
    ux = tf.where(ok, dx / tf.maximum(length, 1e-6), 1.0)
    uy = tf.where(ok, dy / tf.maximum(length, 1e-6), 0.0)
    # along: t = (x - x0)·ux + (y - y0)·uy in [0, L]; across: s = -(x - x0)·uy + (y - y0)·ux in [-r, r]
    t_lo, t_hi = _linear_span(ux, (y - y0) * uy - x0 * ux, 0.0, length)
    s_lo, s_hi = _linear_span(-uy, (y - y0) * ux + x0 * uy, -r, r)
    b_lo, b_hi = tf.maximum(t_lo, s_lo), tf.minimum(t_hi, s_hi)
    band = ok & (b_lo <= b_hi)
    b_lo, b_hi = tf.where(band, b_lo, _FAR), tf.where(band, b_hi, -_FAR)
    d0, d1 = disk(x0, y0), disk(x1, y1)
    return (
        tf.minimum(tf.minimum(d0[0], d1[0]), b_lo),
        tf.maximum(tf.maximum(d0[1], d1[1]), b_hi),
    )


def rect_spans(x0, x1, y0, y1, size: int):
    """Row spans of axis-aligned rectangles ``[x0, x1] × [y0, y1]`` (``[N]`` each)."""
    y = tf.range(size, dtype=tf.float32)[None, :] + 0.5
    inside = (y >= y0[:, None]) & (y <= y1[:, None])
    return tf.where(inside, x0[:, None], _FAR), tf.where(inside, x1[:, None], -_FAR)


def cap_area(spans, weight, unit, count, max_area: float, size: int) -> tf.Tensor:
    """Union of shapes with its hole fraction capped at ``max_area``.

    The shapes belong to numbered units (a stroke, a box); when the union is too
    large, the longest prefix of units ``0..n-1`` (``n >= 1``) whose union fits is kept
    (binary search on ``n``: the area grows with ``n``). If even unit 0 alone is too
    large, its lowest rows are dropped until the area fits. So the cap always holds.

    Args:
        spans: ``(xl, xr)`` float32 ``[N, size]``.
        weight: int32 ``[N]`` (0 = inactive shape).
        unit: int32 ``[N]`` unit number of each shape.
        count: int32 scalar number of active units.
    """
    xl, xr = spans
    limit = tf.constant(int(math.floor(max_area * size * size)), tf.int32)

    def area(n):
        cov = spans_to_mask(xl, xr, tf.where(unit < n, weight, 0), size)
        return cov

    cov = area(count)

    def capped():
        def body(lo, hi):
            mid = (lo + hi + 1) // 2
            fits = tf.reduce_sum(tf.cast(area(mid) > 0, tf.int32)) <= limit
            return tf.where(fits, mid, lo), tf.where(fits, hi, mid - 1)

        lo, _ = tf.while_loop(lambda lo, hi: lo < hi, body, [tf.constant(1), count])
        m = tf.cast(area(lo) > 0, tf.int32)
        keep = tf.cumsum(tf.reduce_sum(m, axis=1)) <= limit
        return m * tf.cast(keep, tf.int32)[:, None]

    holes = tf.reduce_sum(tf.cast(cov > 0, tf.int32))
    m = tf.cond(holes > limit, capped, lambda: tf.cast(cov > 0, tf.int32))
    return tf.cast(m, tf.float32)[:, :, None]
