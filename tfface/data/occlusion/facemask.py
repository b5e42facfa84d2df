"""Face masks: procedural (surgical, cloth, N95) or warped MaskTheFace templates."""

from __future__ import annotations

import configparser
import os
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

import tfface  # noqa: F401  (sets the tf_keras switch before TensorFlow loads)
import tensorflow as tf

from tfface.data.occlusion.core import (Occluder, _check_options, _fill_for, _randint, _seed,
                                        _split, register_occlusion)
from tfface.data.occlusion.frame import _face_frame, _face_grid, _superellipse, _to_px
from tfface.data.occlusion.raster import capsule_spans, spans_to_mask
from tfface.fileio import display_name, regular_file_problem

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
