"""Occlusion synthesis: hole masks and their fill, as stateless, seeded TensorFlow ops.

Every function here is pure TensorFlow (no NumPy callbacks, no per-pixel Python
loops) and *stateless*: the output depends only on the ``seed`` tensor (int32/int64,
shape ``[2]``) and the arguments. The same seed gives the same mask eagerly, inside
``tf.function`` and inside ``Dataset.map(..., num_parallel_calls=...)``, which is what
makes eval splits, calibration sets and bug reports reproducible bit for bit.

Registry
--------
``OCCLUSIONS`` maps a generator name to ``fn(seed, size, landmarks) -> mask`` where
``seed`` is an int tensor ``[2]``, ``size`` a Python int (the square's side),
``landmarks`` float32 ``[5, 2]`` (x, y fractions: left eye, right eye, nose, left
mouth corner, right mouth corner) and ``mask`` float32 ``[size, size, 1]`` with values
exactly 0 or 1 (1 = hole).

``OCCLUSION_IDS`` gives every generator a *stable* int32 id (the ``occlusion`` field
of a dataset element). Ids are assigned at registration and never reused, so adding
a generator later does not renumber the existing ones (which sorting names would do).

``FILLS`` optionally maps a generator name to ``fn(seed, size, image, landmarks) ->
float32 [size, size, 3]`` in ``[0, 255]``, for occluders with their own texture
(sunglasses, face masks); generators without an entry are filled with
:func:`noise_fill`, the CelebA-C fill.

Add a generator with :func:`register_occlusion`.

Rendering
---------
All current shapes are unions of axis-aligned rectangles, drawn with separable 1-D
interval tests: for ``N`` rectangles, row indicators ``R [N, S]`` and column
indicators ``C [N, S]`` give the union as ``R^T @ C > 0``, one small matmul
(``O(N·S²)`` multiply-adds, exact because the summands are 0/1) instead of ``N``
full-size distance fields. A pixel ``(x, y)`` is inside ``[x0, x1] × [y0, y1]``
when its center ``(x + 0.5, y + 0.5)`` is.
"""

from __future__ import annotations

import configparser
import math
import os
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.fileio import display_name, regular_file_problem

MaskFn = Callable[[tf.Tensor, int, tf.Tensor], tf.Tensor]
FillFn = Callable[[tf.Tensor, int, tf.Tensor, tf.Tensor], tf.Tensor]


class Occluder(NamedTuple):
    """A configured generator: what :func:`occlude` draws for one mixture entry.

    Attributes:
        mask: ``fn(seed, size, landmarks) -> float32 [size, size, 1]`` in {0, 1}.
        fill: ``fn(seed, size, image, landmarks) -> float32 [size, size, 3]`` in
            [0, 255], called with the *mask's* seed (so an object's texture follows its
            drawn shape), or ``None`` for the CelebA-C noise N(128, 35) on hole pixels.
    """

    mask: MaskFn
    fill: FillFn | None = None


Factory = Callable[[Mapping[str, Any], Any], Occluder]

OCCLUSIONS: dict[str, MaskFn] = {}
"""Generator name → mask function (see module docstring for the signature)."""
OCCLUSION_IDS: dict[str, int] = {}
"""Generator name → stable int32 id (registration order, never reused)."""
FILLS: dict[str, FillFn] = {}
"""Generator name → object fill (the drawn occluder); missing names use :func:`noise_fill`."""
FACTORIES: dict[str, Factory] = {}
"""Generator name → ``factory(options, data_cfg) -> Occluder`` for generators with
options (see :func:`make_occlusion_fns`); generators without one take no options
except ``fill``."""


def register_occlusion(
    name: str,
    *,
    id: int | None = None,
    fill: FillFn | None = None,
    factory: Factory | None = None,
) -> Callable[[MaskFn], MaskFn]:
    """Decorator that adds a mask generator to :data:`OCCLUSIONS`.

    Args:
        name: registry key, used in ``cfg.data.occlusions``.
        id: stable int id; defaults to one more than the largest id in use.
        fill: optional object texture for the hole (default: :func:`noise_fill`);
            it is called with the mask's seed.
        factory: optional ``factory(options, data_cfg) -> Occluder`` that builds the
            generator from ``cfg.data.occlusion_options[name]`` (and folders).
    """

    def deco(fn: MaskFn) -> MaskFn:
        if name in OCCLUSIONS:
            raise ValueError(f"occlusion generator '{name}' is already registered")
        new_id = id if id is not None else max(OCCLUSION_IDS.values(), default=-1) + 1
        if new_id in OCCLUSION_IDS.values():
            raise ValueError(f"occlusion id {new_id} is already used")
        OCCLUSIONS[name] = fn
        OCCLUSION_IDS[name] = new_id
        if fill is not None:
            FILLS[name] = fill
        if factory is not None:
            FACTORIES[name] = factory
        return fn

    return deco


# --------------------------------------------------------------------------- helpers


def _seed(seed) -> tf.Tensor:
    return tf.cast(tf.convert_to_tensor(seed), tf.int64)


def _split(seed, n: int) -> list[tf.Tensor]:
    """``n`` independent seeds derived from ``seed`` (each int64 ``[2]``)."""
    return tf.unstack(tf.random.experimental.stateless_split(_seed(seed), n))


def _randint(shape, seed, lo, hi) -> tf.Tensor:
    """Uniform integers in the closed range ``[lo, hi]`` (int32)."""
    return tf.random.stateless_uniform(shape, seed, minval=lo, maxval=hi + 1, dtype=tf.int32)


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


# --------------------------------------------------------------------------- CelebA-C

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


# --------------------------------------------------------------------------- boxes

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


# --------------------------------------------------------------------------- fill

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


# --------------------------------------------------------------------------- configuration

FILL_KINDS = ("noise", "solid", "object")
"""Fill kinds an ``occlusion_options[name]["fill"]`` may name: the CelebA-C noise
N(128, 35), one random solid color per element, or the drawn object itself (only for
generators with an object fill: ``facemask``, ``sunglasses``, ``eye_bar``)."""


def _check_options(name: str, options: Mapping[str, Any], valid: set[str]) -> None:
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for occlusion generator '{name}'; "
            f"valid: {', '.join(sorted(valid))}"
        )


def solid_fill(seed, size: int, image, landmarks) -> tf.Tensor:
    """One uniformly random RGB color per element (independent of the mask's shape)."""
    del image, landmarks
    color = tf.random.stateless_uniform(
        [3], tf.random.experimental.stateless_fold_in(_seed(seed), 0x5011D), maxval=256,
        dtype=tf.int32,
    )
    return tf.broadcast_to(tf.cast(color, tf.float32), [size, size, 3])


def _fill_for(name: str, options: Mapping[str, Any], object_fill: FillFn | None) -> FillFn | None:
    """The fill a generator's ``fill`` option selects (default: the object, if any)."""
    kind = options.get("fill", "object" if object_fill is not None else "noise")
    if kind not in FILL_KINDS:
        raise ValueError(f"{name}: fill must be one of {FILL_KINDS}, got '{kind}'")
    if kind == "object":
        if object_fill is None:
            raise ValueError(
                f"{name}: fill 'object' needs a generator that draws an object "
                f"({', '.join(sorted(FILLS))}); use 'noise' or 'solid'"
            )
        return object_fill
    return solid_fill if kind == "solid" else None


def make_occlusion_fns(data_cfg, names: Sequence[str] | None = None) -> dict[str, Occluder]:
    """Configured generators for :func:`occlude`, built once per dataset.

    Reads ``data_cfg.occlusion_options[name]`` and, for the generators that need
    them, the folders ``data_cfg.mask_dir`` (``irregular``) and
    ``data_cfg.facemask_dir`` (``facemask`` templates). Folders are read here, once
    (NumPy/OpenCV), and kept as tensors at ``data_cfg.image_size``; the per-element
    ops only pick and transform them with TF ops.

    Args:
        data_cfg: a :class:`tfface.config.DataConfig` (or anything with its fields).
        names: generators to build; default: every name with a positive probability
            in ``data_cfg.occlusions`` or ``data_cfg.eval_occlusions``.

    Returns:
        ``{name: Occluder}``.

    Raises:
        ValueError: an unknown generator or option, ``irregular`` without
            ``mask_dir``, or a folder that is missing, empty or malformed (the
            message names it).
    """
    if names is None:
        names = [k for k, p in dict(data_cfg.occlusions or {}).items() if float(p) > 0]
        names += [
            k for k, p in dict(data_cfg.eval_occlusions or {}).items() if float(p) > 0
        ]
    names = sorted(set(names))
    check_mixture({n: 1.0 for n in names})
    all_options = dict(getattr(data_cfg, "occlusion_options", None) or {})
    unknown = sorted(set(all_options) - set(OCCLUSIONS))
    if unknown:
        raise ValueError(
            f"data.occlusion_options names unknown generator(s) {unknown}; "
            f"valid names: {', '.join(sorted(OCCLUSIONS))}"
        )
    out = {}
    for name in names:
        options = dict(all_options.get(name) or {})
        if name in FACTORIES:
            out[name] = FACTORIES[name](options, data_cfg)
        else:
            _check_options(name, options, {"fill"})
            out[name] = Occluder(OCCLUSIONS[name], _fill_for(name, options, FILLS.get(name)))
    return out


def default_occluders(names: Sequence[str]) -> dict[str, Occluder]:
    """Registry defaults (no options, no folders) for ``names``."""
    return {n: Occluder(OCCLUSIONS[n], FILLS.get(n)) for n in names}


# --------------------------------------------------------------------------- spans

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


# --------------------------------------------------------------------------- strokes

STROKE_REF_SIZE = 256.0
"""Image side at which the stroke presets state their pixel sizes (they scale with it)."""
STROKE_SEGMENTS = 5
"""Each stroke is a walk of 1–5 segments (LaMa ``1 + randint(5)``)."""

# LaMa's evaluation mask configs (configs/data_gen/random_{thin,medium,thick}_256.yaml):
# strokes with weight 1 and boxes with weight ``box_proba``, one kind per mask.
STROKE_PRESETS: dict[str, dict[str, Any]] = {
    "thin": dict(
        min_times=4, max_times=50, max_width=10, max_len=40, max_angle=4.0,
        box_proba=0.0, box_margin=0, box_min=10, box_max=50, box_min_times=1, box_max_times=5,
    ),
    "medium": dict(
        min_times=4, max_times=5, max_width=50, max_len=100, max_angle=4.0,
        box_proba=0.3, box_margin=0, box_min=10, box_max=50, box_min_times=1, box_max_times=5,
    ),
    "thick": dict(
        min_times=1, max_times=5, max_width=100, max_len=200, max_angle=4.0,
        box_proba=0.3, box_margin=10, box_min=30, box_max=150, box_min_times=1, box_max_times=3,
    ),
}
STROKE_MAX_AREA = 0.5
"""Default cap of the hole fraction of the stroke generators."""


def free_form_walk(seed, size: int, **params) -> dict[str, tf.Tensor]:
    """The random choices of :func:`free_form_mask` (pixels of a ``size`` square).

    Returns:
        dict with ``x``/``y`` (float32 ``[6, K]``: vertex ``j`` of stroke ``k``),
        ``width`` (float32 ``[5, K]``, brush width of segment ``j``), ``n_strokes``
        (int32), ``n_segments`` (int32 ``[K]``), ``is_box`` (bool: boxes instead of
        strokes), ``boxes`` (float32 ``[B, 4]``: x0, x1, y0, y1) and ``n_boxes``,
        where ``K = max_times`` and ``B = box_max_times``.
    """
    p = {**STROKE_PRESETS["thin"], **params}
    k_max, v = int(p["max_times"]), STROKE_SEGMENTS
    scale = size / STROKE_REF_SIZE
    (s_kind, s_n, s_sx, s_sy, s_nseg, s_ang, s_len, s_wid, s_bn, s_bw, s_bh, s_bx,
     s_by) = _split(seed, 13)
    fsize = float(size)
    n_strokes = _randint([], s_n, int(p["min_times"]), k_max)
    x = tf.floor(tf.random.stateless_uniform([k_max], s_sx) * fsize)
    y = tf.floor(tf.random.stateless_uniform([k_max], s_sy) * fsize)
    n_seg = 1 + _randint([k_max], s_nseg, 0, v - 1)
    angle = 0.01 + tf.random.stateless_uniform([v, k_max], s_ang) * float(p["max_angle"])
    even = tf.equal(tf.range(k_max) % 2, 0)[None, :]
    angle = tf.where(even, 2.0 * math.pi - angle, angle)
    length = tf.cast(10 + _randint([v, k_max], s_len, 0, int(p["max_len"]) - 1), tf.float32) * scale
    width = tf.cast(5 + _randint([v, k_max], s_wid, 0, int(p["max_width"]) - 1), tf.float32) * scale
    xs, ys = [x], [y]
    for j in range(v):  # the walk, unrolled over segments and vectorized over strokes
        xs.append(tf.clip_by_value(xs[-1] + length[j] * tf.sin(angle[j]), 0.0, fsize))
        ys.append(tf.clip_by_value(ys[-1] + length[j] * tf.cos(angle[j]), 0.0, fsize))
    out = {
        "x": tf.stack(xs), "y": tf.stack(ys), "width": width, "n_strokes": n_strokes,
        "n_segments": n_seg, "is_box": tf.constant(False), "boxes": tf.zeros([0, 4]),
        "n_boxes": tf.constant(0),
    }
    box_proba = float(p["box_proba"])
    if box_proba > 0:
        b_max = int(p["box_max_times"])
        lo_side = max(1, round(int(p["box_min"]) * scale))
        hi_side = max(lo_side, round((int(p["box_max"]) - 1) * scale))
        margin = float(round(int(p["box_margin"]) * scale))
        bw = tf.cast(_randint([b_max], s_bw, lo_side, hi_side), tf.float32)
        bh = tf.cast(_randint([b_max], s_bh, lo_side, hi_side), tf.float32)
        room_x = tf.maximum(fsize - 2 * margin - bw + 1, 1.0)
        room_y = tf.maximum(fsize - 2 * margin - bh + 1, 1.0)
        bx = margin + tf.floor(tf.random.stateless_uniform([b_max], s_bx) * room_x)
        by = margin + tf.floor(tf.random.stateless_uniform([b_max], s_by) * room_y)
        out["boxes"] = tf.stack([bx, bx + bw, by, by + bh], 1)
        out["n_boxes"] = _randint([], s_bn, int(p["box_min_times"]), b_max)
        out["is_box"] = tf.random.stateless_uniform([], s_kind) < box_proba / (1.0 + box_proba)
    return out


def free_form_mask(seed, size: int, *, max_area: float = STROKE_MAX_AREA, **params) -> tf.Tensor:
    """Free-form brush strokes (LaMa's ``make_random_irregular_mask``, DeepFill v2
    style) or, with probability ``box_proba / (1 + box_proba)``, random boxes
    (LaMa's ``make_random_rectangle_mask``); hole fraction capped at ``max_area``.

    Strokes: ``randint(min_times, max_times)`` strokes, each starting at a uniform
    pixel and walking ``1 + randint(5)`` segments; segment ``j`` has angle
    ``0.01 + U(0, max_angle)`` radians (mirrored to ``2π - angle`` for even strokes,
    as LaMa does; LaMa's angles are integers + 0.01, here they are continuous),
    length ``10 + randint(max_len)`` and brush width ``5 + randint(max_width)`` pixels
    at 256 px (scaled by ``size / 256``); vertices are clipped to the image; round
    caps (``cv2.line``). Boxes: ``randint(box_min_times, box_max_times)`` boxes with
    sides in ``[box_min, box_max - 1]`` px, ``box_margin`` px inside the border.

    Rendered with :func:`capsule_spans` / :func:`rect_spans` and :func:`cap_area`.
    The random choices are :func:`free_form_walk`'s.
    """
    w = free_form_walk(seed, size, **params)
    v, k_max = w["width"].shape
    xs, ys = w["x"], w["y"]
    seg_on = tf.range(v)[:, None] < w["n_segments"][None, :]
    stroke_on = tf.range(k_max)[None, :] < w["n_strokes"]
    sw = tf.reshape(tf.cast(seg_on & stroke_on & ~w["is_box"], tf.int32), [-1])
    units = [tf.reshape(tf.tile(tf.range(k_max)[None, :], [v, 1]), [-1])]
    xl, xr = capsule_spans(
        tf.reshape(xs[:-1], [-1]), tf.reshape(ys[:-1], [-1]),
        tf.reshape(xs[1:], [-1]), tf.reshape(ys[1:], [-1]),
        tf.reshape(w["width"], [-1]) / 2.0, size,
    )
    weights = [sw]
    b_max = w["boxes"].shape[0]
    if b_max:
        bx0, bx1, by0, by1 = tf.unstack(w["boxes"], axis=1)
        bl, br = rect_spans(bx0, bx1, by0, by1, size)
        xl, xr = tf.concat([xl, bl], 0), tf.concat([xr, br], 0)
        weights.append(tf.cast((tf.range(b_max) < w["n_boxes"]) & w["is_box"], tf.int32))
        units.append(tf.range(b_max))
    count = tf.where(w["is_box"], w["n_boxes"], w["n_strokes"])
    return cap_area((xl, xr), tf.concat(weights, 0), tf.concat(units, 0), count, max_area, size)


def _stroke_generator(preset: str) -> MaskFn:
    def fn(seed, size: int, landmarks) -> tf.Tensor:
        del landmarks
        return free_form_mask(seed, size, **STROKE_PRESETS[preset])

    fn.__name__ = f"strokes_{preset}"
    fn.__doc__ = (
        f"LaMa '{preset}' free-form strokes at 256 px ({STROKE_PRESETS[preset]}), hole "
        f"fraction capped at {STROKE_MAX_AREA:.0%}; see :func:`free_form_mask`."
    )
    return fn


def _stroke_factory(preset: str) -> Factory:
    def factory(options: Mapping[str, Any], data_cfg) -> Occluder:
        params = dict(STROKE_PRESETS[preset])
        _check_options(f"strokes_{preset}", options, set(params) | {"max_area", "fill"})
        params.update({k: v for k, v in options.items() if k in params})
        max_area = float(options.get("max_area", STROKE_MAX_AREA))
        if not 0 < max_area <= 1:
            raise ValueError(f"strokes_{preset}: max_area must be in (0, 1], got {max_area}")

        def mask(seed, size: int, landmarks) -> tf.Tensor:
            del landmarks
            return free_form_mask(seed, size, max_area=max_area, **params)

        return Occluder(mask, _fill_for(f"strokes_{preset}", options, None))

    return factory


strokes_thin = register_occlusion("strokes_thin", id=2, factory=_stroke_factory("thin"))(
    _stroke_generator("thin")
)
strokes_medium = register_occlusion("strokes_medium", id=3, factory=_stroke_factory("medium"))(
    _stroke_generator("medium")
)
strokes_thick = register_occlusion("strokes_thick", id=4, factory=_stroke_factory("thick"))(
    _stroke_generator("thick")
)


# --------------------------------------------------------------------------- irregular

IRREGULAR_BIN_WIDTH = 0.1
"""Hole-area bins of the irregular masks: bin ``k`` holds fractions in ``[k/10, (k+1)/10)``
(NVIDIA's test set has bins 0–5: 0–10 %, …, 50–60 %)."""
IRREGULAR_DEFAULTS: dict[str, Any] = {
    "bins": [0, 1, 2, 3, 4, 5],
    "flip": True,
    "rotate": 180.0,
    "scale": [0.8, 1.25],
}
MASK_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def load_mask_bank(mask_dir: str, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a folder of hole masks (NVIDIA irregular mask layout: 8-bit images, white =
    hole) once, resized to ``size`` (nearest neighbour).

    Returns:
        ``(masks uint8 [N, size, size] in {0, 1}, hole fractions float32 [N], file names)``,
        sorted by file name; masks without any hole pixel are left out.

    Raises:
        ValueError: the folder is missing, holds no mask images, or an image cannot
            be decoded (the message names the folder or the file).
    """
    import cv2

    if not mask_dir or not os.path.isdir(mask_dir):
        raise ValueError(f"mask folder '{mask_dir}' does not exist or is not a folder")
    files = sorted(
        f for f in os.listdir(mask_dir) if f.lower().endswith(MASK_EXTENSIONS) and not f.startswith(".")
    )
    if not files:
        raise ValueError(
            f"mask folder '{mask_dir}' holds no mask images ({'/'.join(MASK_EXTENSIONS)}); "
            f"expected NVIDIA irregular masks (white = hole)"
        )
    masks, fracs, names = [], [], []
    for f in files:
        path = os.path.join(mask_dir, f)
        odd = regular_file_problem(path)  # a named pipe would block imread forever
        if odd:
            raise ValueError(f"mask folder '{mask_dir}': '{display_name(f)}' is unusable ({odd})")
        img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if img is None or img.ndim != 2 or min(img.shape) < 8:
            raise ValueError(f"mask folder '{mask_dir}': cannot read '{f}' as a mask image")
        # Nearest neighbour (as NVIDIA advises): area averaging + threshold would erase the
        # thin strokes of small masks when downscaling.
        m = cv2.resize(
            (img > 127).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST_EXACT
        )
        if m.any():
            masks.append(m)
            fracs.append(m.mean())
            names.append(f)
    if not masks:
        raise ValueError(f"mask folder '{mask_dir}': no mask has a hole (white pixels)")
    return np.stack(masks), np.asarray(fracs, np.float32), names


def _affine_transform(m, flip, k, angle, scale, size: int, fill_mode: str, interpolation: str):
    """Warp ``m`` ``[S, S, C]`` about its center: flip, rotate by ``k·90° + angle``, scale."""
    theta = tf.cast(k, tf.float32) * (math.pi / 2) + angle
    c, s = tf.cos(theta) / scale, tf.sin(theta) / scale
    f = tf.where(flip, -1.0, 1.0)
    # output → input: in = ctr + A (out - ctr), A = F · R(theta) / scale
    a00, a01, a10, a11 = f * c, -f * s, s, c
    ctr = (size - 1) / 2.0
    t = tf.stack([a00, a01, ctr - a00 * ctr - a01 * ctr, a10, a11, ctr - a10 * ctr - a11 * ctr, 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=m[None], transforms=t[None], output_shape=[size, size], fill_value=0.0,
        interpolation=interpolation, fill_mode=fill_mode,
    )
    return out[0]


def irregular_from_bank(bank: tf.Tensor, bin_start, bin_count, bin_lo, bin_hi, *, flip=True,
                        rotate=180.0, scale=(0.8, 1.25)) -> MaskFn:
    """Mask function over a loaded bank (``uint8 [N, S, S]``, sorted by area bin).

    Per element: a bin uniformly among the selected ones, a mask uniformly in it,
    then a random horizontal flip, a rotation by a multiple of 90° (both exact),
    and a rotation by ``U(-rotate, rotate)`` degrees and a log-uniform scale in
    ``scale`` (bilinear, reflected at the border, thresholded at half). If the
    continuous warp moves the hole fraction out of the mask's bin, the exact
    flip/rot90 version is used instead, so every mask stays in its bin.
    """
    bin_start = tf.constant(bin_start, tf.int32)
    bin_count = tf.constant(bin_count, tf.int32)
    bin_lo, bin_hi = tf.constant(bin_lo, tf.float32), tf.constant(bin_hi, tf.float32)
    nbins = int(bin_start.shape[0])
    lo_s, hi_s = math.log(float(scale[0])), math.log(float(scale[1]))

    def fn(seed, size: int, landmarks) -> tf.Tensor:
        del landmarks
        if bank.shape[1] != size:
            raise ValueError(f"irregular: the mask bank is {bank.shape[1]} px, asked for {size}")
        s_bin, s_pick, s_flip, s_k, s_ang, s_scale = _split(seed, 6)
        b = _randint([], s_bin, 0, nbins - 1)
        u = tf.random.stateless_uniform([], s_pick)
        idx = bin_start[b] + tf.minimum(
            tf.cast(u * tf.cast(bin_count[b], tf.float32), tf.int32), bin_count[b] - 1
        )
        m = tf.cast(tf.gather(bank, idx), tf.float32)[:, :, None]
        do_flip = flip & (tf.random.stateless_uniform([], s_flip) < 0.5)
        k = _randint([], s_k, 0, 3)
        exact = tf.image.rot90(tf.where(do_flip, tf.reverse(m, [1]), m), k)
        if rotate == 0 and scale[0] == scale[1] == 1:
            return exact
        ang = tf.random.stateless_uniform([], s_ang, -1.0, 1.0) * (float(rotate) * math.pi / 180)
        sc = tf.exp(tf.random.stateless_uniform([], s_scale, lo_s, hi_s)) if hi_s > lo_s else tf.constant(math.exp(lo_s))
        # flip and k·90° first (exact), then the continuous part on top of it.
        warped = _affine_transform(exact, tf.constant(False), 0, ang, sc, size, "REFLECT", "BILINEAR")
        warped = tf.cast(warped > 0.5, tf.float32)
        area = tf.reduce_mean(warped)
        ok = (area >= bin_lo[b]) & (area < bin_hi[b]) & (area > 0)
        return tf.where(ok, warped, exact)

    return fn


def _irregular_factory(options: Mapping[str, Any], data_cfg) -> Occluder:
    _check_options("irregular", options, set(IRREGULAR_DEFAULTS) | {"fill"})
    opts = {**IRREGULAR_DEFAULTS, **options}
    mask_dir = getattr(data_cfg, "mask_dir", None)
    if not mask_dir:
        raise ValueError(
            "occlusion generator 'irregular' needs a folder of hole masks (NVIDIA irregular "
            "mask layout, white = hole): set data.mask_dir (--mask-dir DIR)"
        )
    size = int(data_cfg.image_size)
    masks, fracs, _ = load_mask_bank(mask_dir, size)
    bins = sorted({int(b) for b in opts["bins"]})
    if not bins or min(bins) < 0 or max(bins) > 9:
        raise ValueError(f"irregular: bins must be a non-empty list of 0..9, got {opts['bins']}")
    which = np.minimum((fracs / IRREGULAR_BIN_WIDTH).astype(np.int64), 9)
    order, starts, counts, los, his = [], [], [], [], []
    for b in bins:
        ids = np.nonzero(which == b)[0]
        if not len(ids):
            have = sorted(set(which.tolist()))
            raise ValueError(
                f"mask folder '{mask_dir}' has no mask in area bin {b} "
                f"({b * 10}-{(b + 1) * 10} % at {size} px); bins present: {have}"
            )
        starts.append(len(order))
        counts.append(len(ids))
        order.extend(ids.tolist())
        los.append(b * IRREGULAR_BIN_WIDTH)
        his.append((b + 1) * IRREGULAR_BIN_WIDTH if b < 9 else 1.01)
    scale = [float(s) for s in opts["scale"]]
    if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
        raise ValueError(f"irregular: scale must be [lo, hi] with 0 < lo <= hi, got {opts['scale']}")
    with tf.init_scope():
        bank = tf.constant(masks[np.asarray(order)])
    fn = irregular_from_bank(
        bank, starts, counts, los, his, flip=bool(opts["flip"]), rotate=float(opts["rotate"]),
        scale=scale,
    )
    return Occluder(fn, _fill_for("irregular", options, None))


@register_occlusion("irregular", id=5, factory=_irregular_factory)
def irregular(seed, size: int, landmarks) -> tf.Tensor:
    """Irregular holes from a folder of mask images (NVIDIA irregular mask dataset:
    white = hole), flipped/rotated/scaled, selectable by area bin. Needs a folder:
    build it with :func:`make_occlusion_fns` (``data.mask_dir``)."""
    raise ValueError(
        "occlusion generator 'irregular' needs a folder of hole masks: set data.mask_dir "
        "(--mask-dir DIR) and build the generators with make_occlusion_fns(data_cfg)"
    )


# --------------------------------------------------------------------------- face frame


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


def _capsule_dist(a, b, a0, b0, a1, b1):
    """Distance of grid points ``(a, b)`` to the segment ``(a0, b0)–(a1, b1)`` (scalars)."""
    da, db = a1 - a0, b1 - b0
    t = tf.clip_by_value(((a - a0) * da + (b - b0) * db) / (da * da + db * db + 1e-9), 0.0, 1.0)
    return tf.sqrt(tf.square(a - a0 - t * da) + tf.square(b - b0 - t * db))


def _palette_pick(seed, palette) -> tf.Tensor:
    return tf.gather(tf.constant(palette, tf.float32), _randint([], seed, 0, len(palette) - 1))


# --------------------------------------------------------------------------- face masks

# (RGB, pattern): 0 pleated surgical, 1 plain fabric, 2 N95 cup (seam), 3 stripes, 4 checks
FACEMASK_STYLES = (
    ((138, 186, 222), 0),  # surgical blue
    ((236, 237, 238), 0),  # surgical white
    ((152, 206, 190), 0),  # surgical green
    ((232, 178, 192), 0),  # surgical pink
    ((36, 36, 40), 1),  # black cloth
    ((118, 122, 130), 1),  # grey cloth
    ((228, 224, 214), 2),  # N95 white
    ((42, 58, 98), 3),  # navy striped cloth
    ((150, 40, 48), 4),  # red checked cloth
)


def _superellipse(x, y, m):
    """A cheap superellipse-like metric: ``1`` on a curve between the ellipse
    ``x² + y² = 1`` (``m = 0``) and the squircle ``x⁴ + y⁴ = 1`` (``m = 1``);
    squares and a square root instead of a tensor-exponent ``pow`` on the grid."""
    x2, y2 = tf.square(x), tf.square(y)
    return (1.0 - m) * (x2 + y2) + m * tf.sqrt(tf.square(x2) + tf.square(y2))


def _facemask_geometry(seed, size: int, landmarks, grid: bool = True) -> dict[str, tf.Tensor]:
    """Random shape of a procedural face mask in face coordinates (see :func:`_face_frame`).

    The body is bounded above by a curve from the nose bridge (center) down to the
    cheeks (sides) and below by a jaw-following superellipse centered on the nose
    line that reaches the chin; straps run from its corners toward the ears.
    """
    s_w, s_top, s_side, s_chin, s_p, s_style, s_col, s_tex, s_light = _split(seed, 9)
    f = _face_frame(landmarks, size)
    nose, mouth = f["nose"], f["mouth"]
    style = _randint([], s_style, 0, len(FACEMASK_STYLES) - 1)
    pattern = tf.gather(tf.constant([p for _, p in FACEMASK_STYLES]), style)
    n95 = tf.equal(pattern, 2)
    w = tf.random.stateless_uniform([], s_w, 0.98, 1.12)  # half width at the nose line
    top_c = nose * tf.random.stateless_uniform([], s_top, 0.35, 0.55)  # nose bridge
    top_c = tf.where(n95, top_c * 0.8, top_c)
    top_s = nose * tf.random.stateless_uniform([], s_side, 0.85, 1.05)  # cheeks
    chin = mouth + tf.random.stateless_uniform([], s_chin, 0.6, 0.78) * tf.maximum(mouth - nose, 0.2) / 0.45
    chin = tf.minimum(chin, mouth + 0.95)
    square = tf.where(n95, 0.0, tf.random.stateless_uniform([], s_p, 0.0, 0.6))  # jaw shape
    h = chin - nose
    g = {
        "frame": f, "w": w, "top_c": top_c, "top_s": top_s, "nose": nose, "chin": chin, "h": h,
        "square": square, "style": style, "pattern": pattern, "s_col": s_col, "s_tex": s_tex,
        "s_light": s_light,
    }
    if grid:
        a, b = _face_grid(f, size)
        ra = tf.minimum(tf.abs(a) / w, 1.0)
        top = top_c + (top_s - top_c) * ra * tf.sqrt(ra)
        jaw = _superellipse(tf.abs(a) / w, tf.maximum(b - nose, 0.0) / h, square)
        g.update(a=a, b=b, ra=ra, top=top, body=(b >= top) & (jaw <= 1.0))
    return g


FACEMASK_STRAP = 0.03
"""Half-width of the straps, in eye distances."""


def _facemask_straps(g, size: int) -> tf.Tensor:
    """Coverage (int32 ``[S, S]``) of the 4 straps, rasterized as capsules' row spans."""
    w, top_s, nose, h = g["w"], g["top_s"], g["nose"], g["h"]
    side = tf.constant([-1.0, 1.0, -1.0, 1.0])
    a0 = side * tf.stack([w * 0.98, w * 0.98, w * 0.9, w * 0.9])
    b0 = tf.stack([top_s + 0.06, top_s + 0.06, nose + 0.62 * h, nose + 0.62 * h])
    a1 = side * (w + 0.2)
    b1 = tf.stack([top_s - 0.15, top_s - 0.15, nose + 0.2, nose + 0.2])
    p0, p1 = _to_px(g["frame"], a0, b0), _to_px(g["frame"], a1, b1)
    r = tf.fill([4], FACEMASK_STRAP * g["frame"]["d"])
    spans = capsule_spans(p0[:, 0], p0[:, 1], p1[:, 0], p1[:, 1], r, size)
    return spans_to_mask(*spans, tf.ones([4], tf.int32), size)


def facemask_procedural(seed, size: int, landmarks) -> tf.Tensor:
    g = _facemask_geometry(seed, size, landmarks)
    hole = g["body"] | (_facemask_straps(g, size) > 0)
    return tf.cast(hole, tf.float32)[:, :, None]


def facemask_procedural_fill(seed, size: int, image, landmarks) -> tf.Tensor:
    """Appearance of :func:`facemask_procedural`: palette color, pleats / seam /
    fabric pattern, curvature shading, lighting gradient, texture noise; hole pixels
    outside the body are straps (white for surgical masks, else the mask's color)."""
    del image
    g = _facemask_geometry(seed, size, landmarks)
    a, b, w, ra, pattern = g["a"], g["b"], g["w"], g["ra"], g["pattern"]
    base = tf.gather(tf.constant([c for c, _ in FACEMASK_STYLES], tf.float32), g["style"])
    base = tf.clip_by_value(base + tf.random.stateless_uniform([3], g["s_col"], -12.0, 12.0), 0, 255)
    light = tf.random.stateless_uniform([], g["s_light"], -0.15, 0.15)
    shade = (1.0 - 0.32 * tf.square(ra)) * (1.0 + light * a / w)
    shade *= 1.0 - 0.12 * tf.clip_by_value((b - g["nose"]) / g["h"], 0.0, 1.0)

    def pleats():  # three folds following the face's curvature, a sawtooth per fold
        pitch = (g["chin"] - g["nose"]) * 0.24
        t = (b - (g["nose"] - 0.08) - 0.1 * tf.square(ra)) / pitch
        fr = t - tf.floor(t)
        fold = 1.06 - 0.14 * fr - 0.25 * tf.exp(-tf.square((1.0 - fr) * pitch / 0.025))
        pleat = tf.where((t >= 0) & (t < 3), fold, 1.0)
        return pleat * tf.where((b - g["top"]) < 0.07, 0.9, 1.0)  # nose wire / top hem

    def n95():  # a center seam and a bulging cup
        seam = 1.0 - 0.25 * tf.exp(-tf.square(a / 0.02)) * tf.cast(b > g["top_c"] + 0.1, tf.float32)
        mid = (g["top_c"] + g["chin"]) / 2
        return seam * (1.0 + 0.1 * tf.exp(-(tf.square(a) + tf.square(b - mid)) / 0.3))

    def stripes():
        return tf.where(tf.math.floormod((a + 0.6 * b) / 0.16, 1.0) < 0.5, 1.0, 0.55)

    def checks():
        odd = tf.math.floormod(tf.floor(a / 0.14) + tf.floor(b / 0.14), 2.0)
        return tf.where(tf.equal(odd, 0.0), 1.0, 0.6)

    pat = tf.switch_case(pattern, [pleats, lambda: tf.ones_like(a), n95, stripes, checks])
    noise_amp = tf.gather(tf.constant([4.0, 9.0, 6.0, 7.0, 7.0]), pattern)
    tex = tf.random.stateless_uniform([size, size, 1], g["s_tex"], -1.0, 1.0) * noise_amp
    rgb = base * (shade * pat)[:, :, None] + tex
    strap = tf.where(tf.equal(pattern, 0), tf.fill([3], 240.0), 0.85 * base)
    rgb = tf.where(g["body"][:, :, None], rgb, strap)
    return tf.clip_by_value(rgb, 0.0, 255.0)


# --- templates (MaskTheFace layout)

FACEMASK_ANCHORS = ("mask_a", "mask_b", "mask_c", "mask_f", "mask_e", "mask_d")
"""Anchor keys of ``masks.cfg`` in the order :func:`_facemask_face_points` returns
their face positions (MaskTheFace: a/c = jaw at the nose tip's line, b = nose bridge,
d/f = jaw at the lower lip's line, e = chin)."""


def load_facemask_templates(
    folder: str, size: int, names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read MaskTheFace overlay templates (RGBA PNGs + ``masks.cfg``) once.

    Each template is resized so that its a–c anchor span is half the image side,
    and padded (bottom/right) to a common shape; RGB is premultiplied by alpha (so
    bilinear warping does not darken the rims).

    Args:
        folder: holds ``masks.cfg`` and the PNGs (the ``template:`` paths of the
            config are resolved by file name inside ``folder``).
        size: image side the templates will be warped onto.
        names: config sections to use; default: every frontal one (names without
            ``_left``/``_right``) with a template file.

    Returns:
        ``(rgba float32 [T, H, W, 4] in [0, 1], anchors float32 [T, 6, 2] (x, y px of the
        resized template, :data:`FACEMASK_ANCHORS` order), names)``.

    Raises:
        ValueError: missing/empty folder, no or unparsable ``masks.cfg``, missing or
            malformed anchors, unreadable or alpha-less PNGs, unknown ``names``.
    """
    import cv2

    if not folder or not os.path.isdir(folder):
        raise ValueError(f"face-mask template folder '{folder}' does not exist or is not a folder")
    cfg_path = os.path.join(folder, "masks.cfg")
    if not os.path.isfile(cfg_path):
        raise ValueError(
            f"face-mask template folder '{folder}' has no masks.cfg (MaskTheFace layout: "
            f"RGBA PNGs plus masks.cfg with anchor points mask_a..mask_f)"
        )
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    try:
        parser.read(cfg_path, encoding="utf-8")
    except configparser.Error as e:
        raise ValueError(f"face-mask template folder '{folder}': cannot parse masks.cfg: {e}") from e
    usable = [s for s in parser.sections() if parser.has_option(s, "template")]
    if names is None:
        names = [
            s for s in usable
            if not s.endswith(("_left", "_right"))
            and os.path.isfile(os.path.join(folder, os.path.basename(parser.get(s, "template"))))
        ]
        if not names:
            raise ValueError(
                f"face-mask template folder '{folder}': masks.cfg lists no frontal template "
                f"whose PNG is in the folder"
            )
    else:
        bad = sorted(set(names) - set(usable))
        if bad:
            raise ValueError(
                f"face-mask template folder '{folder}': no template section(s) {bad} in "
                f"masks.cfg; available: {', '.join(usable)}"
            )
    images, anchors = [], []
    for name in names:
        path = os.path.join(folder, os.path.basename(parser.get(name, "template")))
        try:
            pts = np.array(
                [[float(v) for v in parser.get(name, k).split(",")] for k in FACEMASK_ANCHORS],
                np.float64,
            )
        except (configparser.Error, ValueError) as e:
            raise ValueError(
                f"face-mask template folder '{folder}': section [{name}] of masks.cfg needs "
                f"anchors mask_a..mask_f as 'x, y' ({e})"
            ) from e
        if pts.shape != (6, 2):
            raise ValueError(f"face-mask template folder '{folder}': bad anchors in [{name}]")
        odd = regular_file_problem(path)  # a named pipe would block imread forever
        img = None if odd else cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise ValueError(f"face-mask template folder '{folder}': cannot read "
                             f"'{display_name(os.path.basename(path))}'"
                             + (f" ({odd})" if odd else ""))
        if img.ndim != 3 or img.shape[2] != 4:
            raise ValueError(
                f"face-mask template folder '{folder}': '{os.path.basename(path)}' has no alpha "
                f"channel (RGBA needed)"
            )
        rgba = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA).astype(np.float32) / 255.0
        span = float(np.linalg.norm(pts[2] - pts[0]))  # mask_c - mask_a
        f = 0.5 * size / max(span, 1.0)
        hh, ww = max(2, round(rgba.shape[0] * f)), max(2, round(rgba.shape[1] * f))
        rgba = cv2.resize(rgba, (ww, hh), interpolation=cv2.INTER_AREA)
        rgba[..., :3] *= rgba[..., 3:]
        images.append(rgba)
        anchors.append((pts + 0.5) * np.array([ww / img.shape[1], hh / img.shape[0]]) - 0.5)
    hmax = max(i.shape[0] for i in images)
    wmax = max(i.shape[1] for i in images)
    bank = np.zeros((len(images), hmax, wmax, 4), np.float32)
    for i, im in enumerate(images):
        bank[i, : im.shape[0], : im.shape[1]] = im
    return bank, np.asarray(anchors, np.float32), list(names)


def _facemask_face_points(seed, size: int, landmarks) -> tf.Tensor:
    """Where the 6 template anchors go on the face (px, :data:`FACEMASK_ANCHORS` order)."""
    s_w, s_chin, s_top = _split(seed, 3)
    f = _face_frame(landmarks, size)
    nose, mouth = f["nose"], f["mouth"]
    w = tf.random.stateless_uniform([], s_w, 0.95, 1.1)
    chin = mouth + tf.random.stateless_uniform([], s_chin, 0.62, 0.75) * tf.maximum(mouth - nose, 0.2) / 0.45
    top = nose * tf.random.stateless_uniform([], s_top, 0.4, 0.55)
    lip = mouth + 0.15
    a = tf.stack([-w, 0.0, w, 0.88 * w, 0.0, -0.88 * w])
    b = tf.stack([nose, top, nose, lip, chin, lip])
    return _to_px(f, a, b)


def _homography(src, dst) -> tf.Tensor:
    """Least-squares homography (DLT, normalized, float64) mapping ``src`` → ``dst``
    (``[N, 2]`` each, N ≥ 4) as the 8 parameters of ``ImageProjectiveTransformV3``."""
    src, dst = tf.cast(src, tf.float64), tf.cast(dst, tf.float64)

    def norm(p):
        m = tf.reduce_mean(p, 0)
        s = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(p - m), 1)) / 2.0) + 1e-9
        return (p - m) / s, m, s

    ps, ms, ss = norm(src)
    pd, md, sd = norm(dst)
    x, y, X, Y = ps[:, 0], ps[:, 1], pd[:, 0], pd[:, 1]
    one, zero = tf.ones_like(x), tf.zeros_like(x)
    rows_x = tf.stack([x, y, one, zero, zero, zero, -x * X, -y * X], 1)
    rows_y = tf.stack([zero, zero, zero, x, y, one, -x * Y, -y * Y], 1)
    A = tf.concat([rows_x, rows_y], 0)
    rhs = tf.concat([X, Y], 0)[:, None]
    h = tf.linalg.solve(tf.matmul(A, A, transpose_a=True) + 1e-12 * tf.eye(8, dtype=tf.float64),
                        tf.matmul(A, rhs, transpose_a=True))[:, 0]
    Hn = tf.reshape(tf.concat([h, [1.0]], 0), [3, 3])
    Ts = tf.stack([[1 / ss, 0, -ms[0] / ss], [0, 1 / ss, -ms[1] / ss], [0, 0, 1]])
    Td_inv = tf.stack([[sd, 0, md[0]], [0, sd, md[1]], [0, 0, 1]])
    H = Td_inv @ Hn @ Ts
    H = H / H[2, 2]
    return tf.cast(tf.reshape(H, [-1])[:8], tf.float32)


def facemask_template_warp(bank, anchors, seed, size: int, landmarks) -> tf.Tensor:
    """A random template of ``bank`` warped onto the face: float32 ``[S, S, 4]``
    (premultiplied RGB in [0, 1], alpha)."""
    s_pick, s_pts = _split(seed, 2)
    t = _randint([], s_pick, 0, int(bank.shape[0]) - 1)
    face = _facemask_face_points(s_pts, size, landmarks) - 0.5  # pixel centers at integers
    H = _homography(face, tf.gather(anchors, t))  # output (face) → input (template)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.gather(bank, t)[None], transforms=H[None], output_shape=[size, size],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT",
    )[0]


FACEMASK_DEFAULTS: dict[str, Any] = {"templates": None, "template_proba": 1.0}


def _facemask_factory(options: Mapping[str, Any], data_cfg) -> Occluder:
    _check_options("facemask", options, set(FACEMASK_DEFAULTS) | {"fill"})
    opts = {**FACEMASK_DEFAULTS, **options}
    folder = getattr(data_cfg, "facemask_dir", None)
    if not folder:
        return Occluder(facemask_procedural, _fill_for("facemask", options, facemask_procedural_fill))
    size = int(data_cfg.image_size)
    bank_np, anchors_np, _ = load_facemask_templates(folder, size, opts["templates"])
    proba = float(opts["template_proba"])
    if not 0 <= proba <= 1:
        raise ValueError(f"facemask: template_proba must be in [0, 1], got {proba}")
    with tf.init_scope():
        bank, anchors = tf.constant(bank_np), tf.constant(anchors_np)

    def use_template(seed):
        return tf.random.stateless_uniform(
            [], tf.random.experimental.stateless_fold_in(_seed(seed), 0x7E3)
        ) < proba

    def mask(seed, size: int, landmarks) -> tf.Tensor:
        return tf.cond(
            use_template(seed),
            lambda: tf.cast(facemask_template_warp(bank, anchors, seed, size, landmarks)[:, :, 3:] > 0.5, tf.float32),
            lambda: facemask_procedural(seed, size, landmarks),
        )

    def fill(seed, size: int, image, landmarks) -> tf.Tensor:
        def warped():
            w = facemask_template_warp(bank, anchors, seed, size, landmarks)
            return tf.clip_by_value(w[:, :, :3] / tf.maximum(w[:, :, 3:], 1e-3), 0.0, 1.0) * 255.0

        return tf.cond(
            use_template(seed), warped, lambda: facemask_procedural_fill(seed, size, image, landmarks)
        )

    return Occluder(mask, _fill_for("facemask", options, fill))


@register_occlusion("facemask", id=6, fill=facemask_procedural_fill, factory=_facemask_factory)
def facemask(seed, size: int, landmarks) -> tf.Tensor:
    """A surgical / cloth / N95-style face mask over nose, mouth and chin, drawn
    procedurally from the landmarks (jaw-following sides, straps toward the ears);
    with ``data.facemask_dir`` the MaskTheFace templates are warped on instead
    (:func:`make_occlusion_fns`). The default fill is the drawn mask."""
    return facemask_procedural(seed, size, landmarks)


# --------------------------------------------------------------------------- eyes

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


# --------------------------------------------------------------------------- occlude


def check_mixture(mixture: Mapping[str, float]) -> dict[str, float]:
    """Validate a ``{generator name: probability}`` mixture; return it normalized,
    without zero-probability entries, in sorted name order.

    Raises:
        ValueError: unknown names (the message lists the valid ones), negative
            probabilities or a non-positive sum.
    """
    unknown = sorted(set(mixture) - set(OCCLUSIONS))
    if unknown:
        raise ValueError(
            f"unknown occlusion generator(s) {unknown}; "
            f"valid names: {', '.join(sorted(OCCLUSIONS))}"
        )
    if any(float(p) < 0 for p in mixture.values()):
        raise ValueError(f"occlusion probabilities must be >= 0, got {dict(mixture)}")
    total = sum(float(p) for p in mixture.values())
    if total <= 0:
        raise ValueError(f"occlusion probabilities must have a positive sum, got {dict(mixture)}")
    return {k: float(mixture[k]) / total for k in sorted(mixture) if float(mixture[k]) > 0}


def occlude(
    image,
    landmarks,
    seed,
    mixture: Mapping[str, float],
    occluders: Mapping[str, Occluder] | None = None,
) -> dict[str, tf.Tensor]:
    """Damage one face with a generator drawn from ``mixture``.

    Args:
        image: uint8 (or float in [0, 255]) ``[S, S, 3]`` with a static side ``S``.
        landmarks: float32 ``[5, 2]`` (x, y fractions).
        seed: int tensor ``[2]``; the generator choice, the mask and the fill use
            independent seeds split from it.
        mixture: ``{generator name: probability}`` (normalized here).
        occluders: configured generators (:func:`make_occlusion_fns`), at least one per
            name of ``mixture``; default: the registry's (no options, no folders).

    Returns:
        dict with ``occluded`` (float32 ``[S, S, 3]`` in [0, 255]:
        ``image * (1 - mask) + fill * mask``; the default fill is :func:`noise_fill`'s
        distribution drawn for the hole pixels only: the ``k``-th of ``K`` hole pixels
        in row-major order gets ``noise_values(fill_seed, K)[k]``; an occluder's own
        fill is called with the mask's seed), ``mask`` (float32
        ``[S, S, 1]``, 1 = hole) and ``occlusion`` (int32 id from :data:`OCCLUSION_IDS`).
    """
    probs = check_mixture(mixture)
    names = list(probs)
    if occluders is None:
        occluders = default_occluders(names)
    missing = sorted(set(names) - set(occluders))
    if missing:
        raise ValueError(f"occlude: no configured generator for {missing} (make_occlusion_fns)")
    image = tf.convert_to_tensor(image)
    size = image.shape[0]
    if size is None or image.shape[1] != size:
        raise ValueError(f"occlude needs a static square image shape, got {image.shape}")
    s_pick, s_mask, s_fill = _split(seed, 3)
    img = tf.cast(image, tf.float32)

    def branch(name):
        def fn():
            gen = occluders[name]
            mask = tf.ensure_shape(gen.mask(s_mask, size, landmarks), [size, size, 1])
            # Only hole pixels are filled: gather their coordinates once and scatter the
            # fill there. That skips drawing noise for the 80-90 % of pixels that keep
            # the image, and avoids broadcasting [S, S, 1] against [S, S, 3], which is
            # several times slower on CPU than these O(holes) ops.
            holes = tf.where(mask[:, :, 0] > 0.5)
            if gen.fill is None:
                values = noise_values(s_fill, tf.shape(holes)[0])
            else:
                values = tf.gather_nd(gen.fill(s_mask, size, img, landmarks), holes)
            occluded = tf.tensor_scatter_nd_update(img, holes, values)
            return occluded, mask, tf.constant(OCCLUSION_IDS[name], tf.int32)

        return fn

    if len(names) == 1:
        occluded, mask, occ_id = branch(names[0])()
    else:
        cum = tf.constant([sum(list(probs.values())[: i + 1]) for i in range(len(names) - 1)])
        u = tf.random.stateless_uniform([], s_pick)
        pick = tf.reduce_sum(tf.cast(u >= cum, tf.int32))
        occluded, mask, occ_id = tf.switch_case(pick, [branch(n) for n in names])
    occluded = tf.ensure_shape(occluded, [size, size, 3])
    mask = tf.ensure_shape(mask, [size, size, 1])
    return {"occluded": occluded, "mask": mask, "occlusion": occ_id}
