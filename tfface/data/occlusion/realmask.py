"""Face masks as photographed: recoloured, re-textured and lit templates, procedural
surgical / KN95 / N95 / cloth shapes, straps, worn below the nose; a held-out split.

Two generators, with disjoint templates:

- ``realmask`` (training): with ``data.facemask_dir`` (MaskTheFace layout), half of
  the masks are the templates of every family *except* :data:`UNSEEN_TEMPLATE_FAMILIES`
  (all poses: ``x``, ``x_left``, ``x_right``), half are procedural shapes; without a
  folder, procedural shapes only.
- ``realmask_unseen`` (evaluation only): the templates of
  :data:`UNSEEN_TEMPLATE_FAMILIES` (``KN95`` and ``cloth``, 6 of the 21 MaskTheFace
  templates), with the same recolouring and lighting; needs the folder.

Looks (:data:`LOOKS`, :meth:`RealMasks.look`): a mask keeps its own colours
(templates; procedural shapes take their kind's usual colours) or is re-textured with
:func:`~tfface.data.occlusion.appearance.fabric` (plain black / navy / grey, colours,
stripes, checks, dots, florals, camouflage, heather). The template's luminance relative
to its mean is kept as shading, so pleats, folds and printing survive a recolouring.
Every mask is then shaded (a random key-light gradient, darker toward the outline,
creases, specular highlights), lit like the photo (:func:`photo_light`) and given
fabric grain.
"""

from __future__ import annotations

import configparser
import os
from typing import Any, Mapping, Sequence

import numpy as np

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.occlusion import appearance as ap
from tfface.data.occlusion.core import (Occluder, _check_options, _fill_for, _randint, _split,
                                        graph_stable, keyed_seeds, register_occlusion)
from tfface.data.occlusion.facemask import _homography, load_facemask_templates
from tfface.data.occlusion.frame import _face_frame, _face_grid, _superellipse, _to_px
from tfface.data.occlusion.raster import capsule_spans, spans_to_mask

UNSEEN_TEMPLATE_FAMILIES = ("KN95", "cloth")
"""Template families held out of ``realmask`` for ``realmask_unseen``: 2 of the 7
MaskTheFace families (6 of 21 templates). Whole families, with all three poses: a
``_left`` template is the mirror image of its ``_right`` one and the three surgical
colours share one shape, so holding out single files would hold out nothing new."""

LOOKS = ("light", "black", "patterned")
"""Look classes of a drawn mask (:meth:`RealMasks.look`): a plain colour that is not
dark, a dark plain (black, charcoal, navy, dark grey, dark olive; a photographed black
mask kept as it is), a patterned fabric."""

# family → (chance of a new fabric, straps: 0 none / 1 ear loops / 2 head straps,
#           strap colour (None: the mask's own))
TEMPLATE_STYLE: dict[str, tuple[float, int, tuple[int, int, int] | None]] = {
    "surgical": (0.7, 1, (236, 236, 236)),
    "surgical_blue": (0.7, 1, (236, 236, 236)),
    "surgical_green": (0.7, 1, (236, 236, 236)),
    "cloth": (0.75, 1, None),
    "KN95": (0.5, 1, (236, 236, 236)),
    "N95": (0.35, 2, (214, 186, 64)),
    "gas": (0.0, 0, None),
}
DEFAULT_TEMPLATE_STYLE = (0.6, 1, (236, 236, 236))
"""Style of a template family not in :data:`TEMPLATE_STYLE` (a user's own folder)."""

REALMASK_DEFAULTS: dict[str, Any] = {"template_proba": 0.5, "below_nose": 0.18}
"""``template_proba``: chance of a template (when a folder is given) instead of a
procedural shape; ``below_nose``: chance the mask is worn below the nose."""

PROCEDURAL_KINDS = ("surgical", "kn95", "n95", "cloth")
PROCEDURAL_WEIGHTS = (0.35, 0.2, 0.2, 0.25)
_KIND_COLOURS = (  # the usual colours of each kind (its own look)
    ((138, 186, 222), (236, 237, 238), (152, 206, 190), (232, 178, 192), (34, 34, 38)),
    ((236, 236, 234), (30, 30, 33), (226, 176, 190), (120, 160, 205), (236, 236, 234)),
    ((232, 230, 222), (210, 208, 200), (236, 236, 232), (58, 58, 62), (232, 230, 222)),
    ((36, 36, 40), (118, 122, 130), (42, 58, 98), (36, 36, 40), (180, 170, 150)),
)
_KIND_RECOLOUR = (0.5, 0.4, 0.3, 1.0)
VALVE_COLOURS = ((236, 236, 236), (150, 150, 154), (48, 48, 52), (220, 110, 40), (60, 90, 160),
                 (24, 24, 26))
HEAD_STRAP_COLOURS = ((214, 186, 64), (236, 236, 236), (70, 110, 180), (220, 120, 50))


def template_family(name: str) -> str:
    """``KN95_left`` → ``KN95``: the template's family (its name without the pose)."""
    for suffix in ("_left", "_right"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def available_templates(folder: str) -> list[str]:
    """``masks.cfg`` sections of ``folder`` whose template PNG is there, in file order.

    Raises:
        ValueError: a missing folder, no or unparsable ``masks.cfg`` (the message names it).
    """
    if not folder or not os.path.isdir(folder):
        raise ValueError(f"face-mask template folder '{folder}' does not exist or is not a folder")
    cfg_path = os.path.join(folder, "masks.cfg")
    if not os.path.isfile(cfg_path):
        raise ValueError(f"face-mask template folder '{folder}' has no masks.cfg (MaskTheFace "
                         "layout: RGBA PNGs plus masks.cfg with anchor points mask_a..mask_f)")
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    try:
        parser.read(cfg_path, encoding="utf-8")
    except configparser.Error as e:
        raise ValueError(f"face-mask template folder '{folder}': cannot parse masks.cfg: "
                         f"{e}") from e
    return [s for s in parser.sections() if parser.has_option(s, "template")
            and os.path.isfile(os.path.join(folder, os.path.basename(parser.get(s, "template"))))]


def _anchors_inside(folder: str, name: str, margin: float = 0.1) -> bool:
    """Whether the six anchors of template ``name`` lie within its picture (widened by
    ``margin`` of its size). Anchors beyond the picture (MaskTheFace's ``gas_left``,
    ``gas_right``) fold the warp over its horizon; such templates are skipped. A
    template this cannot judge (unreadable anchors or file) is kept, for
    :func:`load_facemask_templates` to report."""
    from PIL import Image

    from tfface.data.occlusion.facemask import FACEMASK_ANCHORS
    from tfface.fileio import regular_file_problem

    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    parser.read(os.path.join(folder, "masks.cfg"), encoding="utf-8")
    path = os.path.join(folder, os.path.basename(parser.get(name, "template")))
    try:
        pts = np.array([[float(v) for v in parser.get(name, k).split(",")]
                        for k in FACEMASK_ANCHORS], np.float64)
        if regular_file_problem(path) or pts.shape != (6, 2):
            return True
        with Image.open(path) as im:
            w, h = im.size
    except (configparser.Error, ValueError, OSError):
        return True
    return bool((pts[:, 0] >= -margin * w).all() and (pts[:, 0] <= (1 + margin) * w).all()
                and (pts[:, 1] >= -margin * h).all() and (pts[:, 1] <= (1 + margin) * h).all())


def split_templates(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(training, unseen)`` template names: the unseen ones are every pose of the
    :data:`UNSEEN_TEMPLATE_FAMILIES`; the two lists never share a family."""
    unseen = [n for n in names if template_family(n) in UNSEEN_TEMPLATE_FAMILIES]
    return [n for n in names if n not in unseen], unseen


# --------------------------------------------------------------------------- placement


def _face_points(seed, size: int, landmarks, low) -> tf.Tensor:
    """Where the 6 template anchors go (px, ``FACEMASK_ANCHORS`` order); ``low``: the
    mask is worn below the nose (its top under the nose tip, the sides lower)."""
    s_w, s_chin, s_top, s_low = _split(seed, 4)
    f = _face_frame(landmarks, size)
    nose, mouth = f["nose"], f["mouth"]
    w = tf.random.stateless_uniform([], s_w, 0.95, 1.1)
    chin = (mouth + tf.random.stateless_uniform([], s_chin, 0.62, 0.78)
            * tf.maximum(mouth - nose, 0.2) * (1 / 0.45))
    top = nose * tf.random.stateless_uniform([], s_top, 0.4, 0.55)
    lip = mouth + 0.15
    a = tf.stack([-w, 0.0, w, 0.88 * w, 0.0, -0.88 * w])
    b = tf.stack([nose, top, nose, lip, chin, lip])
    # worn low: the same mask slid down until its top is under the nose tip; its lower
    # part drapes under the chin (moves less)
    shift = nose + tf.random.stateless_uniform([], s_low, 0.08, 0.16) - top
    b = b + tf.where(low, shift, 0.0) * tf.constant([1.0, 1.0, 1.0, 0.85, 0.7, 0.85])
    return _to_px(f, a, b)


def _warp(bank, anchors, t, points, size: int) -> tf.Tensor:
    """Template ``t`` warped so its anchors land on ``points``: ``[S, S, 4]``
    (premultiplied RGB, alpha); pixels whose preimage is behind the template's horizon
    (a projective fold-over of the side templates) are left empty."""
    H = _homography(points - 0.5, tf.gather(anchors, t))
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.gather(bank, t)[None], transforms=H[None], output_shape=[size, size],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")[0]
    p = tf.range(size, dtype=tf.float32)
    kx = H[6] * p + 1.0
    k = kx[None, :] + H[7] * p[:, None]
    c = tf.reduce_mean(points - 0.5, 0)
    k_face = H[6] * c[0] + H[7] * c[1] + 1.0  # the side of the horizon the face is on
    return out * tf.cast(k * k_face > 0.0, tf.float32)[:, :, None]


def _capsules(frame, a0, b0, a1, b1, radius, size: int) -> tf.Tensor:
    """Union (bool ``[S, S]``) of capsules given in face coordinates (radius in eye distances)."""
    p0, p1 = _to_px(frame, a0, b0), _to_px(frame, a1, b1)
    r = tf.maximum(radius * frame["d"], 0.5)
    xl, xr = capsule_spans(p0[:, 0], p0[:, 1], p1[:, 0], p1[:, 1], r, size)
    return spans_to_mask(xl, xr, tf.ones(tf.shape(r), tf.int32), size) > 0


def _loops(frame, top, low_side, w, r, size: int) -> tf.Tensor:
    """Ear loops from the mask's four corners to the ears."""
    side = tf.constant([-1.0, 1.0, -1.0, 1.0])
    a0 = side * tf.stack([w, w, 0.93 * w, 0.93 * w])
    b0 = tf.stack([top, top, low_side, low_side])
    a1 = side * (w + 0.17)  # both meet behind the ear, which hides the rest
    b1 = tf.stack([top - 0.04, top - 0.04, top + 0.3, top + 0.3])
    return _capsules(frame, a0, b0, a1, b1, tf.fill([4], r), size)


def _head_straps(frame, cy, ry, rx, r, size: int) -> tf.Tensor:
    """Two elastic head straps from a respirator's sides toward the back of the head."""
    side = tf.constant([-1.0, 1.0, -1.0, 1.0])
    a0 = side * tf.stack([0.93 * rx, 0.93 * rx, 0.9 * rx, 0.9 * rx])
    b0 = tf.stack([cy - 0.4 * ry, cy - 0.4 * ry, cy + 0.45 * ry, cy + 0.45 * ry])
    a1 = side * (rx + 0.3)
    b1 = tf.stack([cy - 0.7 * ry, cy - 0.7 * ry, cy + 0.35 * ry, cy + 0.35 * ry])
    return _capsules(frame, a0, b0, a1, b1, tf.fill([4], r), size)


# --------------------------------------------------------------------------- procedural shapes


def _procedural(seed, size: int, landmarks, low) -> dict[str, tf.Tensor]:
    """A procedural mask: its kind (:data:`PROCEDURAL_KINDS`), body and straps (bool
    ``[S, S]``), shading (``[S, S]`` around 1), specular light (levels), a detail
    overlay (valve, hems: colour ``[S, S, 3]`` and weight ``[S, S]``) and colours."""
    s = _split(seed, 16)
    f = _face_frame(landmarks, size)
    a, b = _face_grid(f, size)
    nose, mouth = f["nose"], f["mouth"]
    kind = _weighted_kind(s[0])
    chin = (mouth + tf.random.stateless_uniform([], s[1], 0.6, 0.78)
            * tf.maximum(mouth - nose, 0.2) * (1 / 0.45))
    chin = tf.minimum(chin, mouth + 0.95)
    drop = tf.random.stateless_uniform([], s[2], 0.06, 0.14)
    chin = chin + tf.where(low, 0.25, 0.0)  # worn low: it drapes under the chin
    u = [tf.random.stateless_uniform([], s[3 + i]) for i in range(6)]  # shape parameters
    zero = tf.zeros_like(a)
    none3 = tf.zeros([size, size, 3])
    spec_amp = tf.random.stateless_uniform([], s[9], 0.0, 1.0)

    def surgical():
        w = 0.95 + 0.15 * u[0]
        top_c = tf.where(low, nose + drop, nose * (0.3 + 0.15 * u[1]))
        top_s = tf.where(low, nose + drop + 0.1, nose * (0.72 + 0.18 * u[2]))
        top = top_s - (top_s - top_c) * tf.exp(-tf.square(a * (1 / 0.35)))
        bot_c = chin + 0.05 + 0.1 * u[3]
        bot_s = mouth + 0.15 + 0.15 * u[4]
        ra = tf.minimum(tf.abs(a) / w, 1.0)
        bot = bot_c - (bot_c - bot_s) * tf.square(ra)
        t = (b - top) / tf.maximum(bot - top, 1e-3)
        width = w * (1.0 - 0.08 * tf.clip_by_value(t, 0.0, 1.0))
        body = (t >= 0) & (t <= 1) & (tf.abs(a) <= width)
        tt = t * 4.0  # three pleats between four bands
        fr = tt - tf.floor(tt)
        fold = 1.05 - 0.12 * fr - 0.28 * tf.exp(-tf.square((1.0 - fr) * (1 / 0.09)))
        pleat = tf.where((tt >= 0.6) & (tt < 3.6), fold, 1.0)
        curve = 1.0 - 0.3 * tf.square(ra)
        hem = tf.cast((t < 0.07) | (t > 0.94) | (tf.abs(a) > width - 0.06), tf.float32)
        stitch = tf.cast(tf.abs(t - 0.075) < 0.008, tf.float32) * 0.15
        spec = ap.highlight(a, b, 0.0, top_c + 0.1, 0.3, 0.08, 40.0 * spec_amp)
        straps = _loops(f, top_s + 0.05, bot_s, w, 0.022, size)
        return (body, straps, pleat * curve * (1.0 - stitch), spec,
                none3 + 255.0, 0.12 * hem, tf.constant(1.0))

    def kn95():
        w = 0.95 + 0.15 * u[0]
        top_c = tf.where(low, nose + drop, nose * (0.25 + 0.15 * u[1]))
        top_s = top_c + 0.25 + 0.15 * u[2]
        ra = tf.minimum(tf.abs(a) / w, 1.0)
        top = top_c + (top_s - top_c) * ra
        bot_c = chin + 0.1 + 0.15 * u[3]
        bot_s = mouth + 0.05 + 0.1 * u[4]
        bot = bot_c - (bot_c - bot_s) * tf.pow(ra + 1e-6, 1.2)
        body = (b >= top) & (b <= bot) & (tf.abs(a) <= w)
        panel = 1.0 + (0.1 + 0.1 * u[5]) * tf.where(u[5] > 0.5, 1.0, -1.0) * tf.sign(a)
        seam = 1.0 - 0.3 * tf.exp(-tf.square(a * (1 / 0.015)))
        edge = tf.minimum(tf.minimum(b - top, bot - b), w - tf.abs(a))
        weld = tf.cast((edge > 0.035) & (edge < 0.055)
                       & (tf.math.floormod((a + b) * (1 / 0.05), 1.0) < 0.5), tf.float32)
        spec = (ap.highlight(a, b, -0.35, top_c + 0.3, 0.25, 0.2, 45.0 * spec_amp)
                + ap.highlight(a, b, 0.35, top_c + 0.3, 0.25, 0.2, 25.0 * spec_amp))
        straps = _loops(f, top_s, bot_s, w, 0.018, size)
        return (body, straps, panel * seam * (1.0 - 0.18 * weld), spec, none3, zero,
                tf.constant(1.0))

    def n95():
        top = tf.where(low, nose + drop, nose * (0.3 + 0.15 * u[1]))
        bot = chin + 0.1 * u[3]
        cy, ry = (top + bot) / 2.0, (bot - top) / 2.0
        rx = 0.8 + 0.15 * u[0]
        r = _superellipse(a / rx, (b - cy) / ry, 0.35)
        body = r <= 1.0
        dome = 0.72 + 0.34 * tf.sqrt(tf.maximum(1.0 - r, 0.0))
        rim = tf.where(r > 0.86, 0.86, 1.0)
        # an exhalation valve on one side (55 %): a disk with ribs, its own colour
        vs = tf.where(u[4] > 0.5, 1.0, -1.0)
        va, vb = vs * (0.3 + 0.15 * u[5]), cy + 0.2 * ry
        vr = 0.15 + 0.07 * u[2]
        dv = tf.sqrt(tf.square(a - va) + tf.square(b - vb)) / vr
        has_valve = tf.random.stateless_uniform([], s[10]) < 0.55
        valve = tf.cast((dv <= 1.0) & has_valve, tf.float32)
        vcol = ap.palette_pick(s[11], VALVE_COLOURS)
        ribs = tf.where(tf.math.floormod(dv * (1 / 0.22), 1.0) < 0.35, 0.7, 1.0)
        vshade = (1.05 - 0.3 * tf.square(dv)) * ribs
        detail = vcol * vshade[:, :, None]
        spec = (ap.highlight(a, b, -0.3 * vs, cy - 0.35 * ry, 0.3, 0.25, 45.0 * spec_amp)
                + ap.highlight(a, b, va - 0.05, vb - 0.05, 0.06, 0.05, 60.0 * spec_amp) * valve)
        straps = _head_straps(f, cy, ry, rx, 0.035, size)
        return (body, straps, dome * rim, spec, detail, valve, tf.constant(0.0))

    def cloth():
        w = 0.92 + 0.14 * u[0]
        top_c = tf.where(low, nose + drop, nose * (0.35 + 0.2 * u[1]))
        top_s = tf.where(low, nose + drop + 0.12, nose * (0.85 + 0.2 * u[2]))
        h = chin - nose
        ra = tf.minimum(tf.abs(a) / w, 1.0)
        top = top_c + (top_s - top_c) * tf.pow(ra, 1.5)
        jaw = _superellipse(tf.abs(a) / w, tf.maximum(b - nose, 0.0) / h, 0.6 * u[3])
        body = (b >= top) & (jaw <= 1.0)
        seam = (1.0 - 0.22 * tf.exp(-tf.square(a * (1 / 0.018)))
                + 0.08 * tf.exp(-tf.square((a - 0.04) * (1 / 0.03))))
        curve = 1.0 - 0.32 * tf.square(ra)
        spec = ap.highlight(a, b, 0.0, (top_c + nose) / 2, 0.2, 0.25, 30.0 * spec_amp)
        straps = _loops(f, top_s + 0.04, nose + 0.62 * h, w, 0.035, size)
        return (body, straps, seam * curve, spec, none3, zero, tf.constant(0.0))

    body, straps, shade, spec, detail, detail_w, white_loops = tf.switch_case(
        kind, [surgical, kn95, n95, cloth])
    return {"kind": kind, "body": body, "straps": straps & ~body, "shade": shade, "spec": spec,
            "detail": detail, "detail_w": detail_w, "white_loops": white_loops, "a": a, "b": b}


def _weighted_kind(seed) -> tf.Tensor:
    logits = tf.math.log(tf.constant([PROCEDURAL_WEIGHTS], tf.float32))
    return tf.cast(tf.random.stateless_categorical(logits, 1, seed)[0, 0], tf.int32)


# --------------------------------------------------------------------------- the generator


class RealMasks:
    """The face masks of one split (``"train"`` for ``realmask``, ``"unseen"``).

    Args:
        folder: MaskTheFace template folder, or None (procedural shapes only; not
            allowed for ``"unseen"``).
        size: side the templates are prepared for (any side can be drawn).
        split: ``"train"`` or ``"unseen"``.
        template_proba: chance of a template instead of a procedural shape (``"unseen"``:
            always templates).
        below_nose: chance the mask is worn below the nose.
    """

    def __init__(self, folder: str | None, size: int, split: str = "train",
                 template_proba: float = 0.5, below_nose: float = 0.18):
        if split not in ("train", "unseen"):
            raise ValueError(f"realmask split must be 'train' or 'unseen', got '{split}'")
        for key, v in (("template_proba", template_proba), ("below_nose", below_nose)):
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"realmask: {key} must be in [0, 1], got {v}")
        self.split = split
        self.below_nose = float(below_nose)
        self.names: list[str] = []
        self.mask = graph_stable(self._mask)
        self.fill = graph_stable(self._fill)
        self.skipped: list[str] = []
        if split == "unseen":
            template_proba = 1.0
        if folder:
            names = available_templates(folder)
            self.skipped = [n for n in names if not _anchors_inside(folder, n)]
            train, unseen = split_templates([n for n in names if n not in self.skipped])
            self.names = train if split == "train" else unseen
            if not self.names:
                which = (f"held-out families ({', '.join(UNSEEN_TEMPLATE_FAMILIES)}) of "
                         "realmask_unseen" if split == "unseen"
                         else "training families of realmask")
                raise ValueError(f"face-mask template folder '{folder}' has no usable template "
                                 f"of the {which}")
        elif split == "unseen":
            raise ValueError(
                "occlusion generator 'realmask_unseen' needs the MaskTheFace template folder: "
                "set data.facemask_dir (--facemask-dir DIR)")
        self.template_proba = float(template_proba) if self.names else 0.0
        if self.names:
            bank, anchors, _ = load_facemask_templates(folder, int(size), self.names)
            styles = [TEMPLATE_STYLE.get(template_family(n), DEFAULT_TEMPLATE_STYLE)
                      for n in self.names]
            alpha = bank[..., 3:]
            rgb = bank[..., :3] / np.maximum(alpha, 1e-3)
            lum = (rgb @ np.array([0.299, 0.587, 0.114], np.float32)) * 255.0
            inside = alpha[..., 0] > 0.5
            mean_lum = (lum * inside).sum((1, 2)) / np.maximum(inside.sum((1, 2)), 1)
            frontal = [not n.endswith(("_left", "_right")) for n in self.names]
            with tf.init_scope():
                self.bank = tf.constant(bank)
                self.anchors = tf.constant(anchors)
                self.recolour = tf.constant([s[0] for s in styles], tf.float32)
                # straps are drawn on frontal templates (the side views show their own)
                self.straps = tf.constant([s[1] if f else 0 for s, f in zip(styles, frontal)],
                                          tf.int32)
                self.strap_rgb = tf.constant([s[2] or (-1, -1, -1) for s in styles], tf.float32)
                self.dark = tf.constant(mean_lum < ap.DARK_LUMINANCE)

    # seeds: one fixed derivation per decision, shared by mask, fill and look
    @staticmethod
    def _seeds(seed) -> dict[str, tf.Tensor]:
        keys = ("use", "pick", "points", "proc", "low", "look", "fabric", "light", "crease",
                "grain", "spec", "strap")
        return keyed_seeds(seed, 0x4EA1, keys)

    def _use_template(self, s) -> tf.Tensor:
        return tf.random.stateless_uniform([], s["use"]) < self.template_proba

    def _low(self, s) -> tf.Tensor:
        return tf.random.stateless_uniform([], s["low"]) < self.below_nose

    def _pick(self, s) -> tf.Tensor:
        return _randint([], s["pick"], 0, len(self.names) - 1)

    def _recoloured(self, s, use_template) -> tf.Tensor:
        """Whether the mask gets a new fabric (else its own colours)."""
        u = tf.random.stateless_uniform([], s["look"])
        if self.names:
            p_tpl = tf.gather(self.recolour, self._pick(s))
        else:
            p_tpl = tf.constant(0.0)
        p_proc = tf.gather(tf.constant(_KIND_RECOLOUR), _weighted_kind(_split(s["proc"], 16)[0]))
        return u < tf.where(use_template, p_tpl, p_proc)

    def look(self, seed) -> tf.Tensor:
        """int32 index into :data:`LOOKS` of the mask drawn for ``seed``."""
        s = self._seeds(seed)
        use_t = self._use_template(s)
        pattern, dark = ap.fabric_choice(s["fabric"])
        fabric_look = tf.where(pattern > 0, 2, tf.where(dark, 1, 0))
        if self.names:
            own_dark = tf.where(use_t, tf.gather(self.dark, self._pick(s)), self._own_dark(s))
        else:
            own_dark = self._own_dark(s)
        own_look = tf.where(own_dark, 1, 0)
        return tf.where(self._recoloured(s, use_t), fabric_look, own_look)

    def _own_colour(self, s) -> tf.Tensor:
        kind = _weighted_kind(_split(s["proc"], 16)[0])
        cols = tf.gather(tf.constant(_KIND_COLOURS, tf.float32), kind)
        return tf.gather(cols, _randint([], s["fabric"], 0, len(_KIND_COLOURS[0]) - 1))

    def _own_dark(self, s) -> tf.Tensor:
        return ap.luminance(self._own_colour(s)) < ap.DARK_LUMINANCE

    # -- mask

    def _template_rgba(self, s, size: int, landmarks) -> tf.Tensor:
        pts = _face_points(s["points"], size, landmarks, self._low(s))
        return _warp(self.bank, self.anchors, self._pick(s), pts, size)

    def _template_straps(self, s, size: int, landmarks) -> tf.Tensor:
        """Straps of a frontal template (ear loops or head straps), bool ``[S, S]``."""
        t = self._pick(s)
        kind = tf.gather(self.straps, t)
        pts = _face_points(s["points"], size, landmarks, self._low(s))
        f = _face_frame(landmarks, size)
        rel = pts - f["center"]
        a_pts = (rel[:, 0] * f["u"][0] + rel[:, 1] * f["u"][1]) / f["d"]
        b_pts = (rel[:, 0] * f["v"][0] + rel[:, 1] * f["v"][1]) / f["d"]
        w = (a_pts[2] - a_pts[0]) / 2.0
        loops = _loops(f, (b_pts[0] + b_pts[2]) / 2.0, (b_pts[3] + b_pts[5]) / 2.0, 0.97 * w,
                       0.02, size)
        cy = (b_pts[1] + b_pts[4]) / 2.0
        head = _head_straps(f, cy, (b_pts[4] - b_pts[1]) / 2.0, 0.9 * w, 0.03, size)
        empty = tf.zeros([size, size], tf.bool)
        return tf.switch_case(kind, [lambda: empty, lambda: loops, lambda: head])

    def _template_cover(self, s, size: int, landmarks):
        rgba = self._template_rgba(s, size, landmarks)
        body = rgba[:, :, 3] > 0.5
        straps = self._template_straps(s, size, landmarks) & ~body
        return rgba, body, straps

    def _mask(self, seed, size: int, landmarks) -> tf.Tensor:
        """The hole (``mask``: this through :func:`graph_stable`)."""
        s = self._seeds(seed)

        def template():
            _, body, straps = self._template_cover(s, size, landmarks)
            return body | straps

        def procedural():
            g = _procedural(s["proc"], size, landmarks, self._low(s))
            return g["body"] | g["straps"]

        if not self.names:
            hole = procedural()
        else:
            hole = tf.cond(self._use_template(s), template, procedural)
        return tf.cast(hole, tf.float32)[:, :, None]

    # -- fill

    def _fill(self, seed, size: int, image, landmarks) -> tf.Tensor:
        """The drawn mask (``fill``: this through :func:`graph_stable`)."""
        s = self._seeds(seed)
        f = _face_frame(landmarks, size)
        a, b = _face_grid(f, size)
        use_t = self._use_template(s)
        new = self._recoloured(s, use_t)
        fab = ap.fabric(s["fabric"], a, b, size)

        def template():
            rgba, body, straps = self._template_cover(s, size, landmarks)
            alpha = rgba[:, :, 3:]
            own = tf.clip_by_value(rgba[:, :, :3] / tf.maximum(alpha, 1e-3), 0.0, 1.0) * 255.0
            lum = ap.luminance(own)
            bodyf = tf.cast(body, tf.float32)
            mean = tf.reduce_sum(lum * bodyf) / tf.maximum(tf.reduce_sum(bodyf), 1.0)
            rel = tf.clip_by_value(lum / tf.maximum(mean, 1.0), 0.45, 1.5)
            albedo = tf.where(new, fab * rel[:, :, None], own)
            strap = tf.gather(self.strap_rgb, self._pick(s))  # negative: the mask's own
            own_mean = tf.reduce_sum(albedo * bodyf[:, :, None], [0, 1]) / tf.maximum(
                tf.reduce_sum(bodyf), 1.0)
            strap = tf.where(strap[0] < 0, 0.9 * own_mean, strap)
            albedo = tf.where(straps[:, :, None], strap, albedo)
            return albedo, body | straps, tf.ones_like(lum), tf.zeros_like(lum)

        def procedural():
            g = _procedural(s["proc"], size, landmarks, self._low(s))
            base = tf.where(new, fab, self._own_colour(s) * tf.ones([size, size, 1]))
            dw = g["detail_w"][:, :, None]
            albedo = base * (1.0 - dw) + g["detail"] * dw
            white = tf.fill([3], 236.0)
            strap = tf.where(g["white_loops"] > 0.5, white, 0.9 * tf.reduce_mean(
                tf.reshape(base, [-1, 3]), 0))
            strap = tf.where(tf.equal(g["kind"], 2),
                             tf.gather(tf.constant(HEAD_STRAP_COLOURS, tf.float32),
                                       _randint([], s["strap"], 0, len(HEAD_STRAP_COLOURS) - 1)),
                             strap)
            albedo = tf.where(g["straps"][:, :, None], strap, albedo)
            return albedo, g["body"] | g["straps"], g["shade"], g["spec"]

        if self.names:
            albedo, cover, shade, spec = tf.cond(use_t, template, procedural)
        else:
            albedo, cover, shade, spec = procedural()
        # light: a key-light gradient, roundness toward the outline, creases, a sheen
        depth = tf.random.stateless_uniform([], s["crease"], 0.15, 0.4)
        shade = shade * ap.lighting_gradient(s["light"], a, b) * ap.rim_shade(cover, size, depth)
        shade = shade * ap.creases(s["crease"], a, b)
        sheen = tf.random.stateless_uniform([], s["spec"], 0.0, 35.0)
        spec = spec + ap.highlight(a, b, tf.random.stateless_uniform([], s["spec"], -0.5, 0.5),
                                   f["nose"] + 0.1, 0.35, 0.3, sheen)
        light = ap.photo_light(image, size)
        return ap.finish(albedo, shade, spec, light, s["grain"], size, grain=4.0)

    def occluder(self, options: Mapping[str, Any], name: str) -> Occluder:
        return Occluder(self.mask, _fill_for(name, options, self.fill))


def _realmask_factory(options: Mapping[str, Any], data_cfg) -> Occluder:
    _check_options("realmask", options, set(REALMASK_DEFAULTS) | {"fill"})
    opts = {**REALMASK_DEFAULTS, **options}
    rm = RealMasks(getattr(data_cfg, "facemask_dir", None), int(data_cfg.image_size), "train",
                   opts["template_proba"], opts["below_nose"])
    return rm.occluder(options, "realmask")


def _realmask_unseen_factory(options: Mapping[str, Any], data_cfg) -> Occluder:
    _check_options("realmask_unseen", options, {"below_nose", "fill"})
    rm = RealMasks(getattr(data_cfg, "facemask_dir", None), int(data_cfg.image_size), "unseen",
                   below_nose=options.get("below_nose", REALMASK_DEFAULTS["below_nose"]))
    return rm.occluder(options, "realmask_unseen")


_PROCEDURAL = RealMasks(None, 8, "train")


@register_occlusion("realmask", id=9, fill=_PROCEDURAL.fill, factory=_realmask_factory)
def realmask(seed, size: int, landmarks) -> tf.Tensor:
    """A face mask as photographed (recoloured / re-textured / lit templates of the
    training families and procedural surgical, KN95, N95 and cloth shapes); without
    ``data.facemask_dir``, the procedural shapes only. See the module docstring."""
    return _PROCEDURAL.mask(seed, size, landmarks)


def _unseen_fill(seed, size: int, image, landmarks) -> tf.Tensor:
    return realmask_unseen(seed, size, landmarks)


@register_occlusion("realmask_unseen", id=10, fill=_unseen_fill, factory=_realmask_unseen_factory,
                    held_out=True)
def realmask_unseen(seed, size: int, landmarks) -> tf.Tensor:
    """Face masks of the held-out template families (:data:`UNSEEN_TEMPLATE_FAMILIES`),
    drawn as ``realmask`` draws its own. Needs a folder: build it with
    :func:`make_occlusion_fns` (``data.facemask_dir``)."""
    raise ValueError(
        "occlusion generator 'realmask_unseen' needs the MaskTheFace template folder: set "
        "data.facemask_dir (--facemask-dir DIR) and build the generators with "
        "make_occlusion_fns(data_cfg)")
