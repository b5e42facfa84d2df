"""Scarves, bandanas and neck gaiters over the lower face (``scarf``), and locks of hair
over the eyes (``hair``): photo-like occluders that are not face masks.

Both are drawn in face coordinates (:func:`~tfface.data.occlusion.frame._face_frame`),
shaded and lit like the photo (:mod:`~tfface.data.occlusion.appearance`).
"""

from __future__ import annotations

import math

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.occlusion import appearance as ap
from tfface.data.occlusion.core import _randint, graph_stable, keyed_seeds, register_occlusion
from tfface.data.occlusion.frame import _face_frame, _face_grid, _to_px
from tfface.data.occlusion.raster import capsule_spans, spans_to_mask

SCARF_KINDS = ("bandana", "knit scarf", "neck gaiter")
BANDANA_GROUNDS = ((160, 30, 38), (30, 40, 80), (24, 24, 26), (60, 90, 60))


_SCARF_KEYS = ("kind", "top", "sag", "width", "tip", "slope", "wave", "phase", "fabric",
               "print", "light", "crease", "grain", "depth", "col")


def _scarf_geometry(seed, size: int, landmarks) -> dict[str, tf.Tensor]:
    s = keyed_seeds(seed, 0x5CA5, _SCARF_KEYS)
    f = _face_frame(landmarks, size)
    a, b = _face_grid(f, size)
    nose, mouth = f["nose"], f["mouth"]
    kind = _randint([], s["kind"], 0, len(SCARF_KINDS) - 1)
    u = {k: tf.random.stateless_uniform([], s[k])
         for k in ("top", "sag", "width", "tip", "slope", "wave", "phase")}
    chin = mouth + tf.maximum(mouth - nose, 0.2) * (0.65 / 0.45)
    # bandana: from the nose bridge .. tip down, tied behind the head (visible within its
    # outline), a triangle hanging below the chin
    top_bandana = nose * (0.35 + 0.55 * u["top"]) + (0.05 + 0.15 * u["sag"]) * tf.square(a)
    head_w = 1.12 + 0.2 * u["width"]
    tip = chin + 0.45 * (1.0 + u["tip"])
    slope = 0.45 + 0.45 * u["slope"]
    bandana = (b >= top_bandana) & (tf.abs(a) <= head_w + 0.25 * tf.maximum(b - chin, 0.0)) \
        & (b <= tip - slope * tf.abs(a))
    # knit scarf: a bulky wrap from the mouth / nose down, wider than the face, to the image edge
    knit_c = nose + ((mouth - nose) * (0.9 * u["top"]) - 0.05)
    top_knit = tf.add_n([0.07 * tf.sin(a * (4.0 + 4.0 * u["wave"]) + 6.28 * u["phase"]),
                         0.12 * tf.square(a), knit_c * tf.ones_like(a)])
    knit_w = 1.25 + 0.3 * u["width"] + 0.5 * tf.maximum(b - top_knit, 0.0)
    knit = (b >= top_knit) & (tf.abs(a) <= knit_w)
    # neck gaiter: a tube pulled over the nose, straight sides
    top_gaiter = nose * (0.3 + 0.35 * u["top"]) + (0.2 + 0.15 * u["sag"]) * tf.square(a)
    neck = tf.clip_by_value((b - chin) / 0.5, 0.0, 1.0)  # narrower around the neck
    gaiter = (b >= top_gaiter) & (tf.abs(a) <= (1.05 + 0.2 * u["width"]) * (1.0 - 0.25 * neck))
    body = tf.switch_case(kind, [lambda: bandana, lambda: knit, lambda: gaiter])
    top = tf.switch_case(kind, [lambda: top_bandana, lambda: top_knit, lambda: top_gaiter])
    return {"s": s, "frame": f, "a": a, "b": b, "kind": kind, "body": body, "top": top,
            "tip": tip, "chin": chin}


@graph_stable
def scarf_fill(seed, size: int, image, landmarks) -> tf.Tensor:
    """A fabric (any :func:`~tfface.data.occlusion.appearance.fabric`; bandanas often a
    red / navy / black ground with a white paisley-like print; knits with ribbing and
    wrap folds; gaiters with neck wrinkles), shaded and lit like the photo."""
    g = _scarf_geometry(seed, size, landmarks)
    s, a, b, kind = g["s"], g["a"], g["b"], g["kind"]
    albedo = ap.fabric(s["fabric"], a, b, size)
    ground = tf.gather(tf.constant(BANDANA_GROUNDS, tf.float32),
                       _randint([], s["col"], 0, len(BANDANA_GROUNDS) - 1))
    blob = ap.smooth_noise(s["print"], size, 22)
    paisley = tf.cast((blob > 1.0) & (blob < 1.5) | (blob > 2.0), tf.float32)[:, :, None]
    printed = ground * (1.0 - paisley) + 232.0 * paisley
    use_print = tf.equal(kind, 0) & (tf.random.stateless_uniform([], s["print"]) < 0.45)
    albedo = tf.where(use_print, printed, albedo)
    # folds: a bandana's radiate from its tip, a scarf's wrap around the neck
    ang = tf.atan2(a, tf.maximum(g["tip"] - b, 0.05))
    radial = 1.0 + 0.1 * tf.sin(ang * 9.0 + 3.0 * tf.random.stateless_uniform([], s["crease"]))
    depth = b - g["top"]
    # 0.16 * sin * exp as sin * exp(... + ln 0.16): graph rewriting reorders a product of
    # a scalar and two [S, S] terms, and eager and Dataset.map must agree bit for bit
    wraps = 1.0 + tf.sin(depth * (6.2832 / 0.32)) * tf.exp(-0.15 * depth + math.log(0.16))
    rib = 1.0 - 0.12 * tf.cast(tf.math.floormod(a * (1 / 0.06), 1.0) < 0.4, tf.float32)
    wrinkles = 1.0 + tf.where(b > g["chin"], 0.08 * tf.sin(b * (6.2832 / 0.12) + 2.0 * a), 0.0)
    pattern = tf.switch_case(kind, [lambda: radial, lambda: wraps * rib, lambda: wrinkles])
    rolled = 1.0 - 0.25 * tf.exp(-tf.square((depth - 0.05) * (1 / 0.05)))  # the folded top edge
    shade = (pattern * rolled * ap.lighting_gradient(s["light"], a, b)
             * ap.rim_shade(g["body"], size, tf.random.stateless_uniform([], s["depth"], 0.1, 0.3))
             * ap.creases(s["crease"], a, b, 3, 0.18))
    spec = tf.zeros_like(a)
    return ap.finish(albedo, shade, spec, ap.photo_light(image, size), s["grain"], size, 5.0)


@register_occlusion("scarf", id=11, fill=scarf_fill)
@graph_stable
def scarf(seed, size: int, landmarks) -> tf.Tensor:
    """A scarf, bandana or neck gaiter over the lower face (:data:`SCARF_KINDS`): a
    bandana from the nose down to a triangle below the chin, within the head's
    outline; a bulky knit scarf from the mouth or nose down to the image edge, wider
    than the face; a gaiter pulled over the nose with straight sides. The default fill
    is the fabric (:func:`scarf_fill`)."""
    return tf.cast(_scarf_geometry(seed, size, landmarks)["body"], tf.float32)[:, :, None]


# --------------------------------------------------------------------------- hair

HAIR_COLOURS = ((22, 18, 16), (48, 34, 24), (92, 62, 38), (124, 58, 30), (186, 156, 108),
                (150, 148, 146), (70, 52, 40))
"""black, dark brown, brown, auburn, blond, grey, chestnut."""
HAIR_LOCKS = 3
HAIR_STRANDS = 32
HAIR_SEGMENTS = 6


def _hair_strands(seed, size: int, landmarks) -> dict[str, tf.Tensor]:
    """Coverage of the hair strands in three brightness groups (int32 ``[3, S, S]``)."""
    s = keyed_seeds(seed, 0x4A12, ("locks", "root_a", "root_b", "end_a", "end_b", "bend",
                                   "width", "count", "offset", "jitter", "radius", "wave",
                                   "side", "sweep"))
    f = _face_frame(landmarks, size)
    L, M, K = HAIR_LOCKS, HAIR_STRANDS, HAIR_SEGMENTS
    n_locks = _randint([], s["locks"], 1, L)
    # a fringe: locks from the hairline over one eye (or both), all swept the same way
    side = tf.where(tf.random.stateless_uniform([], s["side"]) < 0.5, -1.0, 1.0)
    sweep = tf.where(tf.random.stateless_uniform([], s["sweep"]) < 0.5, -1.0, 1.0)
    a0 = side * 0.5 + tf.random.stateless_uniform([L], s["root_a"], -0.45, 0.35)
    b0 = tf.random.stateless_uniform([L], s["root_b"], -1.7, -1.15)
    a1 = a0 + sweep * tf.random.stateless_uniform([L], s["end_a"], 0.05, 0.45)
    b1 = tf.random.stateless_uniform([L], s["end_b"], 0.05, 0.7)
    bend = tf.random.stateless_uniform([L], s["bend"], -0.25, 0.25)
    half_w = tf.random.stateless_uniform([L], s["width"], 0.12, 0.3)
    count = _randint([L], s["count"], 12, M)
    # along the lock: a quadratic Bezier, bent sideways; strands spread across it
    t = tf.linspace(0.0, 1.0, K + 1)  # [K+1]
    da, db = a1 - a0, b1 - b0
    ln = tf.sqrt(da * da + db * db) + 1e-6
    na, nb = -db / ln, da / ln  # unit normal of each lock
    ca, cb = (a0 + a1) / 2 + bend * na, (b0 + b1) / 2 + bend * nb

    w0, w1, w2 = tf.square(1.0 - t), 2.0 * (1.0 - t) * t, tf.square(t)

    def bez(p0, c, p1):  # [L, K+1]
        return w0[None] * p0[:, None] + w1[None] * c[:, None] + w2[None] * p1[:, None]

    pa, pb = bez(a0, ca, a1), bez(b0, cb, b1)
    off = tf.random.stateless_uniform([L, M], s["offset"], -1.0, 1.0) * half_w[:, None]
    ragged = tf.random.stateless_uniform([L, M], s["jitter"], 0.75, 1.0)  # uneven ends
    wave = tf.random.stateless_uniform([L, M], s["wave"], 0.0, 6.28)
    tt = t[None, None] * ragged[:, :, None]  # [L, M, K+1]
    taper = 1.0 - 0.45 * tt
    o = off[:, :, None] * taper + 0.015 * tf.sin(tt * 8.0 + wave[:, :, None])

    # a strand that ends early follows the lock to its own end only
    def along(p):  # p [L, K+1] sampled at tt by linear interpolation
        idx = tt * K
        i0 = tf.minimum(tf.cast(tf.floor(idx), tf.int32), K - 1)
        w = idx - tf.cast(i0, tf.float32)
        g0 = tf.gather(p, i0, batch_dims=2)
        g1 = tf.gather(p, i0 + 1, batch_dims=2)
        return g0 * (1 - w) + g1 * w

    pa_s = along(tf.broadcast_to(pa[:, None, :], [L, M, K + 1]))
    pb_s = along(tf.broadcast_to(pb[:, None, :], [L, M, K + 1]))
    sa = pa_s + o * na[:, None, None]
    sb = pb_s + o * nb[:, None, None]
    px = _to_px(f, sa, sb)  # [L, M, K+1, 2]
    x0, y0 = tf.reshape(px[:, :, :-1, 0], [-1]), tf.reshape(px[:, :, :-1, 1], [-1])
    x1, y1 = tf.reshape(px[:, :, 1:, 0], [-1]), tf.reshape(px[:, :, 1:, 1], [-1])
    r = tf.random.stateless_uniform([L, M], s["radius"], 0.006, 0.014) * f["d"]
    r = tf.reshape(tf.broadcast_to(tf.maximum(r, 0.5)[:, :, None], [L, M, K]), [-1])
    active = (tf.range(M)[None] < count[:, None]) & (tf.range(L)[:, None] < n_locks)
    active = tf.reshape(tf.broadcast_to(active[:, :, None], [L, M, K]), [-1])
    group = tf.reshape(tf.broadcast_to((tf.range(M) % 3)[None, :, None], [L, M, K]), [-1])
    xl, xr = capsule_spans(x0, y0, x1, y1, r, size)
    cov = tf.stack([spans_to_mask(xl, xr, tf.cast(active & tf.equal(group, k), tf.int32), size)
                    for k in range(3)])
    return {"coverage": cov, "frame": f}


@graph_stable
def hair_fill(seed, size: int, image, landmarks) -> tf.Tensor:
    """Hair of one colour (:data:`HAIR_COLOURS`, brightness varied), strands in three
    tones (the brightest on top), with a soft sheen; lit like the photo."""
    g = _hair_strands(seed, size, landmarks)
    s = keyed_seeds(seed, 0x4A13, ("col", "gain", "light", "grain", "own"))
    a, b = _face_grid(g["frame"], size)
    col = ap.palette_pick(s["col"], HAIR_COLOURS)
    col = col * tf.random.stateless_uniform([], s["gain"], 0.8, 1.2)
    # half the time the person's own hair: the mean above the hairline, when it is dark
    # enough to be hair (not a bald head or a bright background)
    top = tf.cast((tf.abs(a) < 0.8) & (b > -2.2) & (b < -1.45), tf.float32)
    own = tf.reduce_sum(tf.cast(image, tf.float32) * top[:, :, None], [0, 1]) / tf.maximum(
        tf.reduce_sum(top), 1.0)
    use_own = (tf.random.stateless_uniform([], s["own"]) < 0.5) & (tf.reduce_sum(top) > 0) \
        & (ap.luminance(own) < 130.0)
    col = tf.where(use_own, own, col)
    tones = tf.constant([0.7, 1.0, 1.3])
    upper = tf.argmax(tf.cast(g["coverage"] > 0, tf.int32) * tf.constant([1, 2, 3])[:, None, None],
                      axis=0)
    shade = tf.gather(tones, upper)
    shade *= ap.lighting_gradient(s["light"], a, b, 0.05, 0.2)
    return ap.finish(col * tf.ones([size, size, 1]), shade, tf.zeros_like(a),
                     ap.photo_light(image, size), s["grain"], size, 6.0)


@register_occlusion("hair", id=12, fill=hair_fill)
@graph_stable
def hair(seed, size: int, landmarks) -> tf.Tensor:
    """A fringe: 1–3 locks of hair from the hairline over an eye, swept to one side:
    12–32 strands each along a bent curve (0.006–0.014 eye distances thick, at least
    about a pixel), spread across the lock (0.12–0.3 half-width), narrowing and ending
    unevenly. The default fill is the hair (the person's own colour half the time)."""
    cov = _hair_strands(seed, size, landmarks)["coverage"]
    return tf.cast(tf.reduce_sum(cov, 0) > 0, tf.float32)[:, :, None]
