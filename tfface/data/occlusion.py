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

from typing import Callable, Mapping

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

MaskFn = Callable[[tf.Tensor, int, tf.Tensor], tf.Tensor]
FillFn = Callable[[tf.Tensor, int, tf.Tensor, tf.Tensor], tf.Tensor]

OCCLUSIONS: dict[str, MaskFn] = {}
"""Generator name → mask function (see module docstring for the signature)."""
OCCLUSION_IDS: dict[str, int] = {}
"""Generator name → stable int32 id (registration order, never reused)."""
FILLS: dict[str, FillFn] = {}
"""Generator name → fill function; missing names use :func:`noise_fill`."""


def register_occlusion(
    name: str, *, id: int | None = None, fill: FillFn | None = None
) -> Callable[[MaskFn], MaskFn]:
    """Decorator that adds a mask generator to :data:`OCCLUSIONS`.

    Args:
        name: registry key, used in ``cfg.data.occlusions``.
        id: stable int id; defaults to one more than the largest id in use.
        fill: optional texture for the hole (default: :func:`noise_fill`).
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


def occlude(image, landmarks, seed, mixture: Mapping[str, float]) -> dict[str, tf.Tensor]:
    """Damage one face with a generator drawn from ``mixture``.

    Args:
        image: uint8 (or float in [0, 255]) ``[S, S, 3]`` with a static side ``S``.
        landmarks: float32 ``[5, 2]`` (x, y fractions).
        seed: int tensor ``[2]``; the generator choice, the mask and the fill use
            independent seeds split from it.
        mixture: ``{generator name: probability}`` (normalized here).

    Returns:
        dict with ``occluded`` (float32 ``[S, S, 3]`` in [0, 255]:
        ``image * (1 - mask) + fill * mask``; the default fill is :func:`noise_fill`'s
        distribution drawn for the hole pixels only: the ``k``-th of ``K`` hole pixels
        in row-major order gets ``noise_values(fill_seed, K)[k]``), ``mask`` (float32
        ``[S, S, 1]``, 1 = hole) and ``occlusion`` (int32 id from :data:`OCCLUSION_IDS`).
    """
    probs = check_mixture(mixture)
    names = list(probs)
    image = tf.convert_to_tensor(image)
    size = image.shape[0]
    if size is None or image.shape[1] != size:
        raise ValueError(f"occlude needs a static square image shape, got {image.shape}")
    s_pick, s_mask, s_fill = _split(seed, 3)
    img = tf.cast(image, tf.float32)

    def branch(name):
        def fn():
            mask = tf.ensure_shape(OCCLUSIONS[name](s_mask, size, landmarks), [size, size, 1])
            # Only hole pixels are filled: gather their coordinates once and scatter the
            # fill there. That skips drawing noise for the 80-90 % of pixels that keep
            # the image, and avoids broadcasting [S, S, 1] against [S, S, 3], which is
            # several times slower on CPU than these O(holes) ops.
            holes = tf.where(mask[:, :, 0] > 0.5)
            fill_fn = FILLS.get(name)
            if fill_fn is None:
                values = noise_values(s_fill, tf.shape(holes)[0])
            else:
                values = tf.gather_nd(fill_fn(s_fill, size, image, landmarks), holes)
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
