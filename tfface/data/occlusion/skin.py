"""Hands, fingers and forearms in the face's own skin (``skin_hand``): a TRAINING family.

The held-out ``hand_unseen`` (:mod:`~tfface.data.occlusion.hands`) measures hands a model
never saw; this generator is what a segmenter may learn skin-toned occluders from, so it
is drawn by a different generator, with nothing of ``hand_unseen``'s geometry or colour
code:

- **shapes**: the palm or fist is a star-shaped blob (an ellipse whose radius varies with
  a few random harmonics: knuckles, a thumb's bulge), fingers are *tapered, bent* tubes
  (a quadratic Bezier centre line, the radius shrinking toward the tip), the forearm a
  tapered tube; ``hand_unseen`` draws an ellipse palm with straight, constant-radius
  capsule fingers fanned out of it over the mouth;
- **poses** (:data:`POSES`): one or two fingers upright across the lips (``shush``), a
  fist under the chin (``chin_rest``), a palm over the eyes from the side with its fingers
  across them (``eyes_palm``), spread fingers over the eyes with the face showing between
  them (``peek``), a forearm across the lower face or the eyes (``forearm``), a palm on
  one cheek with its fingers up the side of the face (``cheek_hand``); no phones, no
  gloves;
- **colour**: always the face's own skin, the mean of the mid-tones (luminance between the
  30th and 85th percentile) of the whole face outside the eyes and the mouth, with a
  random gain and a redder or yellower tint, faint mottling and redder edges
  (``hand_unseen``: a cheek box, another skin tone or a glove). The photo's colour is
  already in it, so the photo's exposure is not applied again; its light field is;
- **shading**: relief light from a random side on a height field (the coverage blurred
  twice), dark
  creases where two fingers or a finger and the palm meet, and nails
  (``hand_unseen``: a cylinder per part).
"""

from __future__ import annotations

from typing import Any, Mapping

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.occlusion import appearance as ap
from tfface.data.occlusion.core import (Occluder, _check_options, _fill_for, graph_stable,
                                        keyed_seeds, register_occlusion)
from tfface.data.occlusion.frame import _face_frame, _face_grid, _rotated

POSES = ("shush", "chin_rest", "eyes_palm", "peek", "forearm", "cheek_hand")
"""The hand poses of ``skin_hand`` (module docstring), by index."""
SKIN_HAND_DEFAULTS: dict[str, Any] = {
    "poses": {"shush": 0.16, "chin_rest": 0.18, "eyes_palm": 0.18, "peek": 0.16,
              "forearm": 0.14, "cheek_hand": 0.18},
}
"""Options of ``skin_hand`` (``data.occlusion_options["skin_hand"]``): ``poses``, the
weight of each pose (a subset may be named; the others get 0)."""
MIN_SIZE = 16
"""The smallest side ``skin_hand`` draws at (fingers are a few pixels wide there)."""

_NF = 4  # fingers per hand (unused ones are switched off)
_FAR = 1e3  # normalized distance of a part that is switched off
_KEYS = ("pose", "side", "pa", "pb", "rx", "ry", "rot", "count", "len", "rad", "bend", "harm",
         "phase", "arm", "tilt", "gap", "tint", "gain", "light", "mottle", "grain", "nail",
         "lamp", "cross")


def check_poses(poses: Any) -> tuple[float, ...]:
    """Pose weights in :data:`POSES` order from ``{pose: weight}``.

    Raises:
        ValueError: not a mapping, an unknown pose, a negative weight or no positive one.
    """
    if not isinstance(poses, Mapping):
        raise ValueError(f"skin_hand: poses must be a mapping {{pose: weight}}, got {poses!r}")
    unknown = sorted(set(poses) - set(POSES))
    if unknown:
        raise ValueError(f"skin_hand: unknown pose(s) {unknown}; valid: {', '.join(POSES)}")
    try:
        w = tuple(float(poses.get(p, 0.0)) for p in POSES)
    except (TypeError, ValueError):
        raise ValueError(f"skin_hand: pose weights must be numbers, got {dict(poses)}") from None
    if any(v < 0 for v in w) or not sum(w) > 0:
        raise ValueError(f"skin_hand: pose weights must be >= 0 with a positive sum, "
                         f"got {dict(poses)}")
    return w


def _pick_pose(seed, weights) -> tf.Tensor:
    total = sum(weights)
    cum = [sum(weights[: i + 1]) / total for i in range(len(weights) - 1)]
    u = tf.random.stateless_uniform([], seed)
    return tf.reduce_sum(tf.cast(u >= tf.constant(cum, tf.float32), tf.int32))


def _blob(a, b, p, harm, phase) -> tf.Tensor:
    """Normalized distance ``[S, S]`` (<= 1 inside) to a star-shaped blob: centre
    ``p[0:2]``, half-axes ``p[2:4]``, turned by ``p[4]``; its radius is
    ``1 + sum_k harm[k] cos((k + 2) theta + phase[k])``."""
    x, y = _rotated(a, b, p[0], p[1], p[4])
    xn, yn = x / p[2], y / p[3]
    rho = tf.sqrt(tf.square(xn) + tf.square(yn) + 1e-12)
    th = tf.atan2(yn, xn)
    k = tf.constant([2.0, 3.0, 4.0])[:, None, None]
    radius = 1.0 + tf.reduce_sum(harm[:, None, None] * tf.cos(k * th[None] + phase[:, None, None]),
                                 0)
    return rho / radius


def _tubes(a, b, p0, p1, p2, r0, r1, segments: int = 4) -> tf.Tensor:
    """Normalized distance ``[N, S, S]`` to ``N`` tapered tubes along quadratic Bezier
    curves ``p0 -> p1 -> p2`` (``[N, 2]``, face units), radius ``r0`` at ``p0`` to
    ``r1`` at ``p2`` (``[N]``)."""
    t = tf.linspace(0.0, 1.0, segments + 1)
    w0, w1, w2 = tf.square(1.0 - t), 2.0 * (1.0 - t) * t, tf.square(t)
    q = (w0[None, :, None] * p0[:, None, :] + w1[None, :, None] * p1[:, None, :]
         + w2[None, :, None] * p2[:, None, :])  # [N, K+1, 2]
    rad = r0[:, None] + (r1 - r0)[:, None] * t[None]  # [N, K+1]
    n = int(p0.shape[0])
    a0 = tf.reshape(q[:, :-1, 0], [-1])[:, None, None]
    b0 = tf.reshape(q[:, :-1, 1], [-1])[:, None, None]
    da = tf.reshape(q[:, 1:, 0] - q[:, :-1, 0], [-1])[:, None, None]
    db = tf.reshape(q[:, 1:, 1] - q[:, :-1, 1], [-1])[:, None, None]
    ra = tf.reshape(rad[:, :-1], [-1])[:, None, None]
    dr = tf.reshape(rad[:, 1:] - rad[:, :-1], [-1])[:, None, None]
    ea, eb = a[None] - a0, b[None] - b0
    s = tf.clip_by_value((ea * da + eb * db) / (da * da + db * db + 1e-9), 0.0, 1.0)
    dist = tf.sqrt(tf.square(ea - s * da) + tf.square(eb - s * db) + 1e-12)
    nd = dist / (ra + s * dr)
    return tf.reduce_min(tf.reshape(nd, [n, segments] + a.shape.as_list()), axis=1)


def _fingers(base, direction, length, r0, bend):
    """Bezier control points of fingers starting at ``base`` ``[N, 2]`` toward the unit
    ``direction`` ``[N, 2]`` over ``length`` ``[N]``, bowed sideways by ``bend`` ``[N]``
    (a fraction of the length)."""
    tip = base + direction * length[:, None]
    side = tf.stack([-direction[:, 1], direction[:, 0]], 1)
    mid = 0.5 * (base + tip) + side * (bend * length)[:, None]
    return base, mid, tip, r0, r0 * 0.78


def _unit(ang):
    """Unit vectors (a, b) for angles measured from 'up' (-b), clockwise."""
    return tf.stack([tf.sin(ang), -tf.cos(ang)], -1)


def _pose_params(s, nose, mouth):
    """Every pose's parts (palm blob, four fingers, forearm) for one element; the caller
    keeps the chosen pose's. Face units (eyes at ``a = +-0.5, b = 0``)."""
    u = {k: tf.random.stateless_uniform([8], s[k]) for k in
         ("side", "pa", "pb", "rx", "ry", "rot", "len", "rad", "bend", "arm", "tilt", "gap",
          "cross")}
    side = tf.where(u["side"][0] < 0.5, -1.0, 1.0)
    count = 1 + tf.cast(tf.random.stateless_uniform([], s["count"]) * 4.0, tf.int32)  # 1..4
    idx = tf.range(_NF, dtype=tf.float32)
    chin = mouth + 0.6
    lens = 0.85 + 0.3 * u["len"][:_NF]
    bend = 0.16 * (u["bend"][:_NF] - 0.5)
    r = 0.12 + 0.05 * u["rad"][0]  # finger radius: a finger is ~0.3 eye distances wide
    c = dict(zip(_CTX, (u, side, count, idx, chin, lens, bend, r, nose, mouth)))
    return _mouth_poses(c) + _eye_poses(c) + _arm_poses(c)


_CTX = ("u", "side", "count", "idx", "chin", "lens", "bend", "r", "nose", "mouth")
"""What every pose draws from: the element's uniforms, side, finger count and sizes."""


def _mouth_poses(c):
    """``shush`` and ``chin_rest`` (see :func:`_pose_params`)."""
    u, side, count, idx, chin, lens, bend, r, nose, mouth = (c[k] for k in _CTX)
    poses = []
    # shush: 1-2 fingers upright over the lips, a fist below the chin
    n_sh = tf.where(count > 2, 2, 1)
    tilt = 0.7 * (u["tilt"][0] - 0.5)
    base_a = 0.3 * (u["pa"][0] - 0.5) + (idx - 0.5 * (tf.cast(n_sh, tf.float32) - 1.0)) * 2.1 * r
    base = tf.stack([base_a, tf.fill([_NF], chin + 0.2 + 0.2 * u["pb"][0])], 1)
    dirs = _unit(tilt + 0.1 * (idx - 0.5) * tf.cast(n_sh - 1, tf.float32)) * tf.ones([_NF, 1])
    poses.append({
        "palm": tf.stack([base_a[0], chin + 0.65 + 0.2 * u["pb"][1], 0.45 + 0.13 * u["rx"][0],
                          0.38 + 0.1 * u["ry"][0], tilt, 1.0]),
        "fingers": _fingers(base, dirs, (chin - mouth + 0.75) * lens, tf.fill([_NF], r * 1.15),
                            bend),
        "on": tf.cast(tf.range(_NF) < n_sh, tf.float32),
        "arm": tf.stack([base_a[0], chin + 0.6, base_a[0] + 0.8 * (u["arm"][0] - 0.5), 5.0,
                         0.36, 0.44, 1.0]),
    })

    # chin_rest: a fist at the chin, curled fingers as knuckle bumps on top, forearm down
    ca = 0.45 * (u["pa"][1] - 0.5)
    cb = mouth + 0.35 + 0.3 * u["pb"][2]
    rot = 0.8 * (u["rot"][0] - 0.5)
    rx, ry = 0.5 + 0.15 * u["rx"][1], 0.4 + 0.12 * u["ry"][1]
    across = tf.stack([tf.cos(rot), tf.sin(rot)])
    up = tf.stack([tf.sin(rot), -tf.cos(rot)])
    k_off = (idx - 1.5) * 0.5 * rx
    kb = tf.stack([ca + k_off * across[0] + 0.55 * ry * up[0],
                   cb + k_off * across[1] + 0.55 * ry * up[1]], 1)
    kdir = tf.stack([across[0] * side * 0.5 + up[0], across[1] * side * 0.5 + up[1]])
    kdir = kdir / tf.norm(kdir)
    poses.append({
        "palm": tf.stack([ca, cb, rx, ry, rot, 1.0]),
        "fingers": _fingers(kb, kdir[None] * tf.ones([_NF, 1]), 0.18 + 0.1 * u["len"][:_NF],
                            tf.fill([_NF], r * 1.1), bend * 0.3),
        "on": tf.cast(tf.range(_NF) < 2 + count // 2, tf.float32),
        "arm": tf.stack([ca, cb, ca + 3.0 * (u["arm"][1] - 0.5) - side * 0.8, cb + 5.0,
                         0.36 + 0.08 * u["arm"][2], 0.46, 1.0]),
    })
    return poses


def _eye_poses(c):
    """``eyes_palm`` and ``peek``."""
    u, side, count, idx, chin, lens, bend, r, nose, mouth = (c[k] for k in _CTX)
    poses = []
    # eyes_palm: the palm at one temple, fingers across the eyes toward the other side
    pa_e = side * (1.2 + 0.4 * u["pa"][2])
    pb_e = 0.05 + 0.3 * u["pb"][3]
    rot_e = 0.5 * (u["rot"][1] - 0.5)
    n_e = tf.maximum(count, 3)
    base = tf.stack([tf.fill([_NF], pa_e - side * 0.3),
                     pb_e + (idx - 1.5) * 2.05 * r * 0.95 - 0.05], 1)
    ang = -side * (1.5708 + rot_e) + 0.06 * (idx - 1.5) * side
    poses.append({
        "palm": tf.stack([pa_e, pb_e, 0.5 + 0.12 * u["rx"][2], 0.6 + 0.12 * u["ry"][2],
                          rot_e, 1.0]),
        "fingers": _fingers(base, _unit(ang), (0.75 + 0.55 * u["len"][4]) * lens,
                            tf.fill([_NF], r), bend),
        "on": tf.cast(tf.range(_NF) < n_e, tf.float32),
        "arm": tf.stack([pa_e, pb_e, pa_e + side * 5.0, pb_e + 2.5 + 2.0 * u["arm"][3],
                         0.38, 0.46, 1.0]),
    })

    # peek: spread fingers up over the eyes from below, gaps between them
    n_p = tf.maximum(count, 2)
    centre = side * 0.45 * u["pa"][3]
    gap = 2.1 * r + 0.25 * u["gap"][0]
    offs = (idx - 0.5 * (tf.cast(n_p, tf.float32) - 1.0)) * gap
    tip_b = -0.35 - 0.3 * u["pb"][4]
    base_b = nose + 0.3 + 0.3 * u["pb"][5]
    spread = 0.12 * (idx - 0.5 * (tf.cast(n_p, tf.float32) - 1.0))
    base = tf.stack([centre + offs, tf.fill([_NF], base_b)], 1)
    poses.append({
        "palm": tf.stack([centre, base_b + 0.55, 0.55 + 0.13 * u["rx"][3], 0.5 + 0.1 * u["ry"][3],
                          0.3 * (u["rot"][2] - 0.5), 1.0]),
        "fingers": _fingers(base, _unit(spread + 0.3 * (u["tilt"][1] - 0.5)),
                            (base_b - tip_b) * (0.9 + 0.2 * u["len"][:_NF]), tf.fill([_NF], r),
                            bend),
        "on": tf.cast(tf.range(_NF) < n_p, tf.float32),
        "arm": tf.stack([centre, base_b + 0.6, centre + 1.5 * (u["arm"][4] - 0.5), 5.0,
                         0.38, 0.46, 1.0]),
    })
    return poses


def _arm_poses(c):
    """``forearm`` and ``cheek_hand``."""
    u, side, count, idx, chin, lens, bend, r, nose, mouth = (c[k] for k in _CTX)
    poses = []
    # forearm: a thick tapered tube across the lower face (60 %) or the eyes, from outside
    # the image, crossing it or ending in a fist on the face
    low = u["cross"][0] < 0.6
    fb = tf.where(low, mouth + 0.4 * (u["pb"][6] - 0.5), 0.05 + 0.2 * (u["pb"][6] - 0.5))
    fang = 0.8 * (u["rot"][3] - 0.5)
    ends = u["cross"][1] < 0.5
    end_a = tf.where(ends, side * (0.8 * u["pa"][4] - 0.2), -side * 5.0)
    start = tf.stack([side * 5.0, fb + side * 5.0 * tf.tan(fang)])
    stop = tf.stack([end_a, fb + end_a * tf.tan(fang)])
    poses.append({
        "palm": tf.stack([stop[0], stop[1], 0.48 + 0.12 * u["rx"][4], 0.4 + 0.1 * u["ry"][4],
                          fang + 1.5708, tf.cast(ends, tf.float32)]),
        "fingers": _fingers(tf.zeros([_NF, 2]), _unit(tf.zeros([_NF])), tf.ones([_NF]),
                            tf.fill([_NF], r), bend),
        "on": tf.zeros([_NF]),
        "arm": tf.stack([start[0], start[1], stop[0], stop[1], 0.34 + 0.14 * u["arm"][5],
                         (0.34 + 0.14 * u["arm"][5]) * (0.85 + 0.3 * u["arm"][6]), 1.0]),
    })

    # cheek_hand: a palm on one cheek, fingers up the side of the face
    pa_c = side * (0.85 + 0.35 * u["pa"][5])
    pb_c = nose + 0.25 + 0.4 * u["pb"][7]
    rot_c = side * (-0.15 + 0.45 * u["rot"][4])
    n_c = tf.maximum(count, 3)
    up = tf.stack([tf.sin(-rot_c), -tf.cos(rot_c)])
    acr = tf.stack([tf.cos(rot_c), tf.sin(rot_c)])
    offs = (idx - 1.5) * 2.05 * r
    base = tf.stack([pa_c + offs * acr[0] + 0.35 * up[0], pb_c + offs * acr[1] + 0.35 * up[1]], 1)
    poses.append({
        "palm": tf.stack([pa_c, pb_c, 0.48 + 0.12 * u["rx"][5], 0.58 + 0.12 * u["ry"][5],
                          -rot_c, 1.0]),
        "fingers": _fingers(base, _unit(-rot_c + 0.05 * (idx - 1.5)) * tf.ones([_NF, 1]),
                            (0.6 + 0.3 * u["len"][5]) * lens, tf.fill([_NF], r), bend),
        "on": tf.cast(tf.range(_NF) < n_c, tf.float32),
        "arm": tf.stack([pa_c, pb_c, pa_c + side * (1.0 + 2.0 * u["arm"][7]), pb_c + 5.0,
                         0.38, 0.46, 1.0]),
    })
    return poses


def _parts(seed, size: int, landmarks, weights):
    """The chosen pose's parts as normalized distances on the grid: ``palm`` ``[S, S]``,
    ``fingers`` ``[4, S, S]``, ``arm`` ``[S, S]`` (<= 1 inside; far when absent), and
    the face grid."""
    if size < MIN_SIZE:
        raise ValueError(f"skin_hand: size must be at least {MIN_SIZE}, got {size}")
    s = keyed_seeds(seed, 0x5C1A, _KEYS)
    f = _face_frame(landmarks, size)
    a, b = _face_grid(f, size)
    poses = _pose_params(s, f["nose"], f["mouth"])
    k = _pick_pose(s["pose"], weights)

    def pick(fn):
        return tf.gather(tf.stack([fn(p) for p in poses]), k)

    palm = pick(lambda p: p["palm"])
    p0, p1, p2, r0, r1 = (pick(lambda p, i=i: p["fingers"][i]) for i in range(5))
    on = pick(lambda p: p["on"])
    arm = pick(lambda p: p["arm"])
    harm = tf.random.stateless_uniform([3], s["harm"], -0.07, 0.07)
    phase = tf.random.stateless_uniform([3], s["phase"], 0.0, 6.28318)
    nd_palm = tf.where(palm[5] > 0.5, _blob(a, b, palm, harm, phase), _FAR)
    nd_fing = _tubes(a, b, p0, p1, p2, r0, r1)
    nd_fing = tf.where(on[:, None, None] > 0.5, nd_fing, _FAR)
    nd_arm = _tubes(a, b, tf.stack([arm[0:2]]), tf.stack([0.5 * (arm[0:2] + arm[2:4])]),
                    tf.stack([arm[2:4]]), arm[4:5], arm[5:6], segments=1)[0]
    nd_arm = tf.where(arm[6] > 0.5, nd_arm, _FAR)
    return {"s": s, "frame": f, "a": a, "b": b, "palm": nd_palm, "fingers": nd_fing,
            "arm": nd_arm, "tips": p2, "tip_r": r1, "tip_dir": p2 - p1, "on": on}


def _cover(g) -> tf.Tensor:
    return (tf.minimum(tf.minimum(g["palm"], g["arm"]), tf.reduce_min(g["fingers"], 0))
            <= 1.0)


def own_skin(image, a, b, mouth) -> tf.Tensor:
    """The face's own skin colour (float32 ``[3]``): the mean RGB of the pixels of the
    face (``|a| < 0.85``, ``-0.25 < b < mouth + 0.4``) outside the eyes and the mouth whose
    luminance lies between the region's 30th and 85th percentile."""
    img = tf.cast(image, tf.float32)
    eyes = (tf.abs(b) < 0.2) & (tf.abs(tf.abs(a) - 0.5) < 0.3)
    lips = (tf.abs(b - mouth) < 0.17) & (tf.abs(a) < 0.45)
    region = (tf.abs(a) < 0.85) & (b > -0.25) & (b < mouth + 0.4) & ~eyes & ~lips
    px = tf.boolean_mask(img, region)
    px = tf.cond(tf.shape(px)[0] > 16, lambda: px, lambda: tf.reshape(img, [-1, 3]))
    lum = ap.luminance(px)
    lo, hi = ap._percentile(lum, 0.3), ap._percentile(lum, 0.85)
    mid = tf.boolean_mask(px, (lum >= lo - 1.0) & (lum <= hi + 1.0))
    return tf.cond(tf.shape(mid)[0] > 0, lambda: tf.reduce_mean(mid, 0),
                   lambda: tf.reduce_mean(px, 0))


def _blur(x, k: int) -> tf.Tensor:
    m = x[None, :, :, None]
    m = tf.nn.avg_pool2d(m, [1, k, 1, 1], 1, "SAME")
    return tf.nn.avg_pool2d(m, [1, 1, k, 1], 1, "SAME")[0, :, :, 0]


def _skin_hand_fill(weights):
    @graph_stable
    def fill(seed, size: int, image, landmarks) -> tf.Tensor:
        g = _parts(seed, size, landmarks, weights)
        s, a, b = g["s"], g["a"], g["b"]
        cover = tf.cast(_cover(g), tf.float32)
        # height field: the coverage blurred twice, lit from a random side (relief
        # shading around 1, so the skin keeps the face's own brightness on average)
        k = max(3, (size // 12) | 1)
        h = _blur(_blur(cover, k), k)
        slope = k / 2.0  # per pixel -> per half blur width
        gy = (tf.concat([h[1:], h[-1:]], 0) - tf.concat([h[:1], h[:-1]], 0)) * slope
        gx = (tf.concat([h[:, 1:], h[:, -1:]], 1) - tf.concat([h[:, :1], h[:, :-1]], 1)) * slope
        lamp = tf.random.stateless_uniform([2], s["lamp"], [0.0, 0.35], [6.28318, 0.8])
        relief = -(gx * tf.cos(lamp[0]) + gy * tf.sin(lamp[0]))
        shade = tf.clip_by_value(1.0 + lamp[1] * relief, 0.55, 1.3)
        # creases where two parts meet: the two nearest parts about equally near
        parts = tf.concat([g["fingers"], g["palm"][None], g["arm"][None]], 0)
        two = -tf.math.top_k(-tf.transpose(parts, [1, 2, 0]), 2).values
        crease = tf.exp(-tf.square((two[:, :, 1] - two[:, :, 0]) * (1.0 / 0.12)))
        crease = crease * tf.cast(two[:, :, 1] < 1.15, tf.float32)
        shade = shade * (1.0 - 0.3 * crease)
        shade = shade * ap.lighting_gradient(s["light"], a, b, 0.05, 0.2)
        # albedo: the face's own skin, a gain and tint, mottling, redder edges, nails
        skin = own_skin(image, a, b, g["frame"]["mouth"])
        t = tf.random.stateless_uniform([3], s["tint"], [0.98, 0.97, 0.86], [1.1, 1.02, 1.0])
        gain = tf.random.stateless_uniform([], s["gain"], 0.86, 1.12)
        albedo = (skin * (t * gain))[None, None, :] * tf.ones_like(a)[:, :, None]
        mottle = 1.0 + 0.04 * ap.smooth_noise(s["mottle"], size, 9)
        edge = 1.0 - tf.clip_by_value(2.0 * _blur(cover, k) - 1.0, 0.0, 1.0)
        albedo = albedo * mottle[:, :, None] * (1.0 + edge[:, :, None]
                                                * tf.constant([0.06, -0.03, -0.05]))
        tip_dir = g["tip_dir"] / (tf.norm(g["tip_dir"], axis=1, keepdims=True) + 1e-6)
        nail_c = g["tips"] - tip_dir * (0.45 * g["tip_r"])[:, None]
        nail_d = (tf.square(a[None] - nail_c[:, 0, None, None])
                  + tf.square(b[None] - nail_c[:, 1, None, None])) \
            / tf.square(0.55 * g["tip_r"])[:, None, None]
        show = tf.cast(tf.random.stateless_uniform([], s["nail"]) < 0.5, tf.float32)
        nail = tf.reduce_max(tf.cast(nail_d < 1.0, tf.float32) * g["on"][:, None, None], 0) * show
        albedo = albedo + nail[:, :, None] * tf.constant([18.0, 10.0, 12.0])
        spec = 25.0 * nail * tf.clip_by_value(relief + 0.5, 0.0, 1.0)
        # the photo's light field relative to the face's (the skin colour is already lit)
        field = ap.photo_light(image, size)["field"]
        face = tf.cast((tf.abs(a) < 0.85) & (b > -0.25) & (b < g["frame"]["mouth"] + 0.4),
                       tf.float32)
        field = tf.clip_by_value(field * (tf.reduce_sum(face) / tf.maximum(
            tf.reduce_sum(field * face), 1e-3)), 0.75, 1.25)
        rgb = albedo * (shade * field)[:, :, None] + (spec * field)[:, :, None]
        rgb += tf.random.stateless_uniform([size, size, 1], s["grain"], -3.0, 3.0)
        return tf.clip_by_value(rgb, 0.0, 255.0)

    return fill


def _skin_hand_mask(weights):
    @graph_stable
    def mask(seed, size: int, landmarks) -> tf.Tensor:
        return tf.cast(_cover(_parts(seed, size, landmarks, weights)), tf.float32)[:, :, None]

    return mask


_DEFAULT_WEIGHTS = check_poses(SKIN_HAND_DEFAULTS["poses"])
_DEFAULT_FILL = _skin_hand_fill(_DEFAULT_WEIGHTS)


def _skin_hand_factory(options: Mapping[str, Any], data_cfg) -> Occluder:
    _check_options("skin_hand", options, set(SKIN_HAND_DEFAULTS) | {"fill"})
    if "poses" not in options:
        return Occluder(skin_hand, _fill_for("skin_hand", options, _DEFAULT_FILL))
    w = check_poses(options["poses"])
    return Occluder(_skin_hand_mask(w), _fill_for("skin_hand", options, _skin_hand_fill(w)))


skin_hand_fill = _DEFAULT_FILL
skin_hand = register_occlusion("skin_hand", id=14, fill=_DEFAULT_FILL,
                               factory=_skin_hand_factory)(_skin_hand_mask(_DEFAULT_WEIGHTS))
skin_hand.__doc__ = ("A hand, fingers or a forearm in the face's own skin (module docstring); "
                     "a training family, distinct from the held-out hand_unseen.")
