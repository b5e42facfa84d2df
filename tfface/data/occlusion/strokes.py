"""Free-form brush strokes (LaMa's thin / medium / thick masks)."""

from __future__ import annotations

import math
from typing import Any, Mapping

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.occlusion.core import (Factory, MaskFn, Occluder, _check_options, _fill_for,
                                        _randint, _split, register_occlusion)
from tfface.data.occlusion.raster import cap_area, capsule_spans, rect_spans

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
