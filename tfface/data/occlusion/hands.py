"""A hand or a phone in front of the mouth (``hand_unseen``): a held-out family.

No training generator draws hands or phones, so ``hand_unseen`` measures occluders of a
kind a model never saw (:data:`~tfface.data.occlusion.core.HELD_OUT`).

- hand (60 %): a palm (rotated ellipse) over the mouth, four fingers and a thumb
  (capsules) pointing up or sideways over the cheek, a wrist and forearm reaching out
  of the image; skin from the face's own cheeks (55 %), another skin tone (30 %) or a
  glove (15 %); each part shaded as a cylinder, so fingers separate by their shadows.
- phone (40 %): a rounded rectangle (portrait, or landscape 25 %) held before the
  mouth: a glossy back (black, graphite, white, silver, or a coloured case) with a camera
  module and lenses, or its dark screen (30 %); a metal rim; fingertips holding its
  sides.
"""

from __future__ import annotations

import math

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.occlusion import appearance as ap
from tfface.data.occlusion.core import graph_stable, keyed_seeds, register_occlusion
from tfface.data.occlusion.frame import _face_frame, _face_grid, _rotated

SKIN_TONES = ((236, 196, 172), (214, 168, 136), (186, 134, 100), (142, 96, 66), (98, 64, 44),
              (66, 44, 32))
GLOVE_COLOURS = ((24, 24, 26), (40, 44, 70), (120, 120, 124), (160, 40, 40), (220, 220, 216))
PHONE_COLOURS = ((20, 20, 22), (58, 60, 64), (232, 232, 230), (196, 198, 202), (210, 186, 150),
                 (40, 70, 130), (170, 36, 44), (60, 110, 80), (226, 170, 186), (30, 30, 34))

_KEYS = ("kind", "px", "py", "rx", "ry", "rot", "len", "fw", "thumb", "skin", "tone", "glove",
         "light", "grain", "land", "hw", "hh", "cr", "col", "screen", "cam", "grip", "spec",
         "depth")


def _capsule_dist(a, b, a0, b0, a1, b1) -> tf.Tensor:
    """Distance ``[N, S, S]`` of every pixel to segments ``(a0, b0)–(a1, b1)`` (``[N]``)."""
    a0, b0, a1, b1 = (t[:, None, None] for t in (a0, b0, a1, b1))
    da, db = a1 - a0, b1 - b0
    t = tf.clip_by_value(((a[None] - a0) * da + (b[None] - b0) * db)
                         / (da * da + db * db + 1e-9), 0.0, 1.0)
    return tf.sqrt(tf.square(a[None] - a0 - t * da) + tf.square(b[None] - b0 - t * db))


def _hand(s, a, b, nose, mouth):
    """Coverage (bool) and cylinder shading of a hand over the mouth."""
    u = {k: tf.random.stateless_uniform([], s[k])
         for k in ("px", "py", "rx", "ry", "rot", "fw", "thumb")}
    pa, pb = 0.5 * (u["px"] - 0.5), mouth + (0.35 * u["py"] - 0.1)
    rx, ry = 0.42 + 0.13 * u["rx"], 0.5 + 0.12 * u["ry"]
    ang = 2.8 * (u["rot"] - 0.5)  # fingers from sideways-left through up to sideways-right
    fw = 0.085 + 0.03 * u["fw"]
    x, y = _rotated(a, b, pa, pb, ang)
    rp = tf.square(x / rx) + tf.square(y / ry)
    palm = rp <= 1.0
    up_a, up_b = tf.sin(ang), -tf.cos(ang)  # finger direction
    px_a, px_b = tf.cos(ang), tf.sin(ang)  # across the hand
    spread = fw * tf.constant([-1.5 * 2.05, -0.5 * 2.05, 0.5 * 2.05, 1.5 * 2.05])
    stretch = 0.9 + 0.3 * tf.random.stateless_uniform([], s["len"])
    lens = stretch * tf.constant([0.5, 0.64, 0.6, 0.46])
    tilt = tf.constant([-0.12, -0.04, 0.04, 0.12])
    ba = pa + up_a * (ry * 0.75) + px_a * spread  # scalars first, then [4]: as graph
    bb = pb + up_b * (ry * 0.75) + px_b * spread  # rewriting orders them
    ea = ba + lens * (up_a * tf.cos(tilt) + px_a * tf.sin(tilt))
    eb = bb + lens * (up_b * tf.cos(tilt) + px_b * tf.sin(tilt))
    side = tf.where(u["thumb"] < 0.5, -1.0, 1.0)
    ta0, tb0 = pa + side * px_a * rx * 0.7, pb + side * px_b * rx * 0.7
    tang = ang + side * 0.9
    ta1, tb1 = ta0 + 0.42 * tf.sin(tang), tb0 - 0.42 * tf.cos(tang)
    wa0, wb0 = pa - up_a * ry * 0.4, pb - up_b * ry * 0.4
    wa1, wb1 = pa - up_a * 4.0, pb - up_b * 4.0  # the forearm leaves the image
    a0 = tf.concat([ba, [ta0, wa0]], 0)
    b0 = tf.concat([bb, [tb0, wb0]], 0)
    a1 = tf.concat([ea, [ta1, wa1]], 0)
    b1 = tf.concat([eb, [tb1, wb1]], 0)
    radius = tf.concat([tf.fill([4], fw), [fw * 1.2, 0.32 + 0.06 * u["rx"]]], 0)
    dist = _capsule_dist(a, b, a0, b0, a1, b1) / radius[:, None, None]
    parts = dist <= 1.0
    cyl = tf.where(parts, 0.55 + 0.45 * tf.sqrt(tf.maximum(1.0 - tf.square(dist), 0.0)), 0.0)
    dome = tf.where(palm, 0.7 + 0.3 * tf.sqrt(tf.maximum(1.0 - rp, 0.0)), 0.0)
    # the palm lies under the fingers' bases: the nearer (upper) surface wins
    shade = tf.maximum(tf.reduce_max(cyl[:4], 0), tf.maximum(dome, tf.reduce_max(cyl[4:], 0)))
    cover = palm | tf.reduce_any(parts, 0)
    return cover, shade


def _phone(s, a, b, nose, mouth):
    """Coverage, shading, albedo and specular light of a phone held before the mouth."""
    u = {k: tf.random.stateless_uniform([], s[k])
         for k in ("px", "py", "rot", "hw", "hh", "cr", "land", "screen", "cam", "spec")}
    pa, pb = 0.6 * (u["px"] - 0.5), mouth + 0.4 * u["py"] - 0.25
    land = u["land"] < 0.25
    ang = 1.0 * (u["rot"] - 0.5) + tf.where(land, math.pi / 2, 0.0)
    hw, hh = 0.5 + 0.12 * u["hw"], 1.0 + 0.22 * u["hh"]
    cr = 0.08 + 0.08 * u["cr"]
    x, y = _rotated(a, b, pa, pb, ang)
    qx, qy = tf.abs(x) - (hw - cr), tf.abs(y) - (hh - cr)
    sd = (tf.sqrt(tf.square(tf.maximum(qx, 0.0)) + tf.square(tf.maximum(qy, 0.0)))
          + tf.minimum(tf.maximum(qx, qy), 0.0) - cr)  # signed distance to the outline
    body = sd <= 0.0
    col = ap.palette_pick(s["col"], PHONE_COLOURS)
    screen = u["screen"] < 0.3
    glass = tf.constant([16.0, 18.0, 22.0])
    base = tf.where(screen, glass, col)
    albedo = base * tf.ones_like(a)[:, :, None]
    # a camera module near a top corner (the back), with two or three lenses
    cam_x, cam_y = x + hw - 0.28, y + hh - 0.3
    cam = (tf.abs(cam_x) < 0.2) & (tf.abs(cam_y) < 0.2 + 0.08 * u["cam"]) & ~screen
    lens_d = tf.minimum(tf.sqrt(tf.square(cam_x) + tf.square(cam_y - 0.09)),
                        tf.sqrt(tf.square(cam_x) + tf.square(cam_y + 0.09)))
    lens = cam & (lens_d < 0.065)
    ring = cam & (lens_d >= 0.065) & (lens_d < 0.085)
    albedo = tf.where(cam[:, :, None], 0.75 * base + 8.0, albedo)
    albedo = tf.where(ring[:, :, None], tf.constant([150.0, 150.0, 154.0]), albedo)
    albedo = tf.where(lens[:, :, None], tf.constant([10.0, 10.0, 14.0]), albedo)
    rim = body & (sd > -0.035)
    metal = tf.constant([170.0, 172.0, 176.0]) * 0.8 + 0.2 * base
    albedo = tf.where(rim[:, :, None], metal, albedo)
    # glossy: a broad diagonal reflection band
    band = x * 0.6 + y * 0.8 - (u["spec"] - 0.5) * 1.6
    spec = (20.0 + 60.0 * u["spec"]) * tf.exp(-tf.square(band / 0.25))
    spec = tf.where(screen, spec * 1.3, spec * tf.where(ap.luminance(col) < 80.0, 1.0, 0.5))
    shade = 1.0 - 0.25 * tf.exp(-tf.square((sd + 0.0) * (1 / 0.03)))
    # fingertips holding the sides (skin, part of the occluder)
    g = tf.random.stateless_uniform([3], s["grip"], -0.6, 0.6) * hh
    fa = tf.stack([-hw - 0.03, -hw - 0.03, hw + 0.03])
    ea = tf.stack([-hw + 0.12, -hw + 0.12, hw - 0.14])
    # [3] terms summed before the scalar is added (graph rewriting sums same-shaped
    # terms first; written so, eager and Dataset.map agree bit for bit)
    pa_ = (fa * tf.cos(ang) - g * tf.sin(ang)) + pa
    pb_ = (fa * tf.sin(ang) + g * tf.cos(ang)) + pb
    qa_ = (ea * tf.cos(ang) - g * tf.sin(ang)) + pa
    qb_ = (ea * tf.sin(ang) + g * tf.cos(ang)) + pb
    inv_r = tf.constant([1 / 0.09, 1 / 0.09, 1 / 0.11])[:, None, None]
    tips = _capsule_dist(a, b, pa_, pb_, qa_, qb_) * inv_r
    finger = tf.reduce_any(tips <= 1.0, 0)
    fshade = 0.55 + 0.45 * tf.sqrt(tf.maximum(1.0 - tf.square(tf.reduce_min(tips, 0)), 0.0))
    return body, finger & ~body, shade, fshade, albedo, spec


def _skin(s, image, a, b) -> tf.Tensor:
    """The face's own cheek colour (55 %), a skin tone (30 %) or a glove colour (15 %)."""
    cheek = tf.cast((tf.abs(a) > 0.3) & (tf.abs(a) < 0.75) & (b > 0.3) & (b < 0.65), tf.float32)
    own = tf.reduce_sum(tf.cast(image, tf.float32) * cheek[:, :, None], [0, 1]) / tf.maximum(
        tf.reduce_sum(cheek), 1.0)
    own = own * tf.constant([1.04, 0.97, 0.95])  # hands are a little redder
    tone = ap.palette_pick(s["tone"], SKIN_TONES)
    glove = ap.palette_pick(s["glove"], GLOVE_COLOURS)
    u = tf.random.stateless_uniform([], s["skin"])
    return tf.where(u < 0.55, own, tf.where(u < 0.85, tone, glove))


def _is_hand(s) -> tf.Tensor:
    return tf.random.stateless_uniform([], s["kind"]) < 0.6


def _seeds(seed) -> dict[str, tf.Tensor]:
    return keyed_seeds(seed, 0x4A4D, _KEYS)


def draws_hand(seed) -> tf.Tensor:
    """Whether ``hand_unseen`` with this seed draws a hand (else a phone): the split that
    benchmarks report the two by."""
    return _is_hand(_seeds(seed))


def _geometry(seed, size: int, landmarks):
    s = _seeds(seed)
    f = _face_frame(landmarks, size)
    a, b = _face_grid(f, size)
    return s, f, a, b


@graph_stable
def hand_fill(seed, size: int, image, landmarks) -> tf.Tensor:
    """The hand (skin or glove, shaded per finger) or the phone (its back or screen,
    camera, rim, gloss, fingertips), lit like the photo."""
    s, f, a, b = _geometry(seed, size, landmarks)
    skin = _skin(s, image, a, b)

    def hand():
        cover, shade = _hand(s, a, b, f["nose"], f["mouth"])
        return skin * tf.ones_like(a)[:, :, None], shade, tf.zeros_like(a)

    def phone():
        body, finger, shade, fshade, albedo, spec = _phone(s, a, b, f["nose"], f["mouth"])
        albedo = tf.where(finger[:, :, None], skin, albedo)
        shade = tf.where(finger, fshade, shade)
        return albedo, shade, tf.where(body, spec, 0.0)

    albedo, shade, spec = tf.cond(_is_hand(s), hand, phone)
    shade = shade * ap.lighting_gradient(s["light"], a, b)
    return ap.finish(albedo, shade, spec, ap.photo_light(image, size), s["grain"], size, 3.0)


@register_occlusion("hand_unseen", id=13, fill=hand_fill, held_out=True)
@graph_stable
def hand_unseen(seed, size: int, landmarks) -> tf.Tensor:
    """A hand or a phone in front of the mouth (module docstring); evaluation only.
    The default fill is the drawn hand or phone."""
    s, f, a, b = _geometry(seed, size, landmarks)

    def hand():
        return _hand(s, a, b, f["nose"], f["mouth"])[0]

    def phone():
        body, finger = _phone(s, a, b, f["nose"], f["mouth"])[:2]
        return body | finger

    return tf.cast(tf.cond(_is_hand(s), hand, phone), tf.float32)[:, :, None]
