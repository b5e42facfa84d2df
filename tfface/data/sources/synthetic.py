"""The synthetic source: procedurally drawn frontal faces (no data needed)."""

from __future__ import annotations

import contextlib
import logging
from types import SimpleNamespace
from typing import Callable

import tfface  # noqa: F401  (selects tf_keras before TensorFlow is imported)

import cv2
import numpy as np
import tensorflow as tf

from tfface.config import DataConfig
from tfface.data.sources.base import (FaceSource, SourceError, _check_split, _keep_indices,
                                      _train_item_stream)
from tfface.framing import CANONICAL_LANDMARKS

logger = logging.getLogger(__name__)

_SKIN_TONES = np.array(
    [
        [250, 222, 200], [241, 205, 178], [232, 190, 160], [218, 170, 135],
        [198, 146, 110], [172, 120, 86], [145, 96, 66], [115, 74, 50], [86, 56, 40],
    ],
    np.float32,
)
_HAIR_COLORS = np.array(
    [
        [22, 18, 16], [38, 28, 22], [62, 42, 30], [92, 62, 40], [122, 84, 52],
        [140, 70, 38], [176, 134, 84], [212, 180, 124], [150, 146, 140], [205, 200, 192],
    ],
    np.float32,
)
_HAIR_WEIGHTS = np.array([3, 3, 3, 2.5, 2, 0.8, 1.2, 1.2, 0.8, 0.5])
_IRIS_COLORS = np.array(
    [[70, 42, 24], [45, 28, 18], [100, 70, 40], [70, 105, 150], [80, 110, 75],
     [110, 95, 60], [105, 118, 128]],
    np.float32,
)
_IRIS_WEIGHTS = np.array([3, 3, 2, 1.5, 1, 1, 0.7])
_AA, _SHIFT = cv2.LINE_AA, 4


def _col(color) -> tuple:
    return tuple(float(v) for v in np.atleast_1d(color))


class _Painter:
    """Anti-aliased OpenCV drawing in face coordinates (fractions of the square).

    Every point goes through the face's pose (a similarity transform: rotation, scale,
    shift), so the whole face is drawn already jittered and no image warp is needed.
    ``origin`` shifts the pixel frame, to draw into a region of interest.
    """

    def __init__(self, canvas: int, angle_deg: float, scale: float, center, shift, origin=(0, 0)):
        self.canvas, self.angle, self.scale = canvas, angle_deg, scale
        a = np.deg2rad(angle_deg)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * scale
        center = np.asarray(center, np.float64)
        self.A = rot * canvas
        self.b = (center - rot @ center + np.asarray(shift)) * canvas - np.asarray(origin, np.float64)

    def at(self, origin) -> "_Painter":
        p = object.__new__(_Painter)
        p.canvas, p.angle, p.scale, p.A = self.canvas, self.angle, self.scale, self.A
        p.b = self.b - np.asarray(origin, np.float64)
        return p

    def px(self, points) -> np.ndarray:
        """Face fractions -> float pixel coordinates in this painter's frame."""
        return np.asarray(points, np.float64).reshape(-1, 2) @ self.A.T + self.b

    def _fix(self, points) -> np.ndarray:
        return np.round(self.px(points) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)

    def box(self, x0, y0, x1, y1, margin=0.0) -> tuple[int, int, int, int]:
        """Pixel bounding box of a face-space rectangle, grown by ``margin`` (fraction)."""
        c = self.px([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])
        m = margin * self.canvas
        lo, hi = np.floor(c.min(0) - m), np.ceil(c.max(0) + m) + 1
        return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])

    def fill(self, img, points, color):
        cv2.fillPoly(img, [self._fix(points)], _col(color), _AA, _SHIFT)

    def line(self, img, points, color, thickness):
        t = max(1, int(round(thickness * self.scale * self.canvas)))
        cv2.polylines(img, [self._fix(points)], False, _col(color), t, _AA, _SHIFT)

    def ellipse(self, img, center, axes, color, angle=0.0, a0=0.0, a1=360.0, thickness=None):
        c = self._fix([center])[0, 0]
        ax = np.round(np.asarray(axes, np.float64) * self.scale * self.canvas * (1 << _SHIFT))
        t = -1 if thickness is None else max(1, int(round(thickness * self.scale * self.canvas)))
        cv2.ellipse(img, (int(c[0]), int(c[1])), (int(ax[0]), int(ax[1])),
                    float(angle + self.angle), float(a0), float(a1), _col(color), t, _AA, _SHIFT)


def _clip_box(box, shape):
    x0, y0, x1, y1 = box
    return max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1)


def _blend(img, box, mask_fn, content, alpha=1.0, blur=0.0):
    """Alpha-blend ``content`` (a color, or a function drawing on a copy of the region)
    into ``img`` through the anti-aliased mask ``mask_fn`` draws, inside pixel ``box``."""
    x0, y0, x1, y1 = _clip_box(box, img.shape)
    if x1 <= x0 or y1 <= y0:
        return
    roi = img[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], np.uint8)
    mask_fn(mask, (x0, y0))
    m = mask.astype(np.float32) * (alpha / 255.0)
    if blur > 0:
        k = int(blur // 2)
        if k >= 2 and min(m.shape) >= 4 * k:  # wide blur: cheaper at reduced resolution
            h, w = m.shape
            small = cv2.resize(m, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
            m = cv2.resize(cv2.GaussianBlur(small, (0, 0), blur / k), (w, h),
                           interpolation=cv2.INTER_LINEAR)
        else:
            m = cv2.GaussianBlur(m, (0, 0), blur)
    if callable(content):
        layer = roi.copy()
        content(layer, (x0, y0))
        layer = layer.astype(np.float32)
    else:
        layer = np.asarray(content, np.float32)
    r = roi.astype(np.float32)
    img[y0:y1, x0:x1] = (r + (layer - r) * m[:, :, None] + 0.5).astype(np.uint8)


def render_synthetic_face(seed: int, face_id: int, size: int, stream: int = 0
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic frontal face, deterministically from ``(seed, stream, face_id)``.

    Args:
        seed: global seed (``data.seed``).
        face_id: which face; the same id always gives the same bytes.
        size: output side in pixels (drawn at 2x, then area-downsampled).
        stream: 0 for training faces, 1 for eval faces (disjoint random streams).

    Returns:
        ``(image uint8 [size, size, 3] RGB, landmarks float32 [5, 2])`` where the
        landmarks are the true positions of the drawn eye centers, nose tip and mouth
        corners (after pose jitter) as fractions of the square; they scatter around
        :data:`CANONICAL_LANDMARKS` like those of aligned CelebA faces.

    The layers are drawn back to front by the ``_paint_*`` steps below, which all draw
    from one random generator in a fixed order (so the order of the steps, and of the
    draws inside them, is part of every face's bytes).
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(stream) & 0xFFFF, int(face_id)])
    C = 2 * int(size)
    img = _paint_background(rng, C)
    f = _face_identity(rng, C)
    _paint_body(img, rng, f)
    _paint_hair_back(img, rng, f)
    _paint_ears(img, f)
    _paint_face(img, rng, f)
    _paint_hair_front(img, rng, f)
    _paint_nose(img, rng, f)
    _paint_cheeks(img, rng, f)
    _paint_eyes(img, rng, f)
    _paint_mouth(img, rng, f)
    landmarks = (f.P.px(f.lm) / C).astype(np.float32)
    return _camera(img, rng, size), landmarks


def _paint_background(rng: np.random.Generator, C: int) -> np.ndarray:
    """The canvas (``C x C``): solid, gradient or blotchy, built at low resolution."""
    u = rng.uniform
    bg1 = u(20, 235, 3)
    bg2 = np.clip(bg1 + u(-90, 90, 3), 0, 255)
    g = np.linspace(-0.5, 0.5, 16)
    ang = u(0, 2 * np.pi)
    t = 0.5 + g[None, :] * np.cos(ang) + g[:, None] * np.sin(ang)
    kind = rng.integers(3)
    if kind == 0:
        t = t * 0.15
    elif kind == 2:
        t = 0.5 * t + 0.5 * (0.5 + 0.3 * cv2.resize(rng.standard_normal((5, 5)), (16, 16),
                                                      interpolation=cv2.INTER_CUBIC))
    small = np.clip(bg1 + (bg2 - bg1) * np.clip(t, 0, 1)[:, :, None], 0, 255).astype(np.uint8)
    return cv2.resize(small, (C, C), interpolation=cv2.INTER_LINEAR)


def _face_identity(rng: np.random.Generator, C: int) -> SimpleNamespace:
    """Colors, landmark geometry around the CelebA means, pose and face outline.

    Returns the face's shared state; later steps add what they choose (hair extent,
    light direction) to it.
    """
    u = rng.uniform
    tone = u(0, len(_SKIN_TONES) - 1.001)
    i0 = int(tone)
    skin = _SKIN_TONES[i0] + (_SKIN_TONES[i0 + 1] - _SKIN_TONES[i0]) * (tone - i0)
    skin = np.clip(skin * u(0.94, 1.05) + u(-6, 6, 3), 0, 255)
    shadow = skin * 0.72
    hair = _HAIR_COLORS[rng.choice(len(_HAIR_COLORS), p=_HAIR_WEIGHTS / _HAIR_WEIGHTS.sum())]
    hair = np.clip(hair * u(0.85, 1.15) + u(-8, 8, 3), 0, 255)
    bald = u() < 0.05
    hair_len = rng.choice(3, p=[0.35, 0.3, 0.35])  # short, chin length, long
    fringe = rng.choice(3, p=[0.45, 0.3, 0.25])  # none, side sweep, straight bangs

    canon = CANONICAL_LANDMARKS.astype(np.float64)
    cx = 0.497 + u(-0.006, 0.006)
    eye_y = canon[0, 1] + u(-0.012, 0.012)
    half_iod = (canon[1, 0] - canon[0, 0]) / 2 * u(0.92, 1.08)
    nose_y = eye_y + (canon[2, 1] - canon[0, 1]) * u(0.88, 1.12)
    mouth_y = nose_y + (canon[3, 1] - canon[2, 1]) * u(0.85, 1.15)
    mouth_hw = (canon[4, 0] - canon[3, 0]) / 2 * u(0.85, 1.15)
    lm = np.array(
        [[cx - half_iod, eye_y], [cx + half_iod, eye_y], [cx + u(-0.004, 0.004), nose_y],
         [cx - mouth_hw, mouth_y], [cx + mouth_hw, mouth_y]]
    )

    # pose jitter, applied to every drawn point (and to the landmarks)
    pose_center = (cx, nose_y)
    P = _Painter(C, u(-7, 7), u(0.93, 1.07), pose_center, u(-0.025, 0.025, 2))

    face_w = half_iod * u(2.05, 2.3)
    chin_y = mouth_y + u(0.115, 0.15)
    top_y = eye_y - u(0.26, 0.3)
    face_cy, face_h = (chin_y + top_y) / 2, (chin_y - top_y) / 2
    jaw, chin_pow = u(0.18, 0.42), u(1.2, 2.4)
    tt = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    s, c = np.sin(tt), np.cos(tt)
    width = np.where(s > 0, 1 - jaw * np.abs(s) ** chin_pow, 1.0)
    contour = np.stack([cx + face_w * c * width, face_cy + face_h * s], 1)
    return SimpleNamespace(
        C=C, P=P, lm=lm, skin=skin, shadow=shadow, hair=hair, bald=bald, hair_len=hair_len,
        fringe=fringe, cx=cx, eye_y=eye_y, half_iod=half_iod, nose_y=nose_y, mouth_y=mouth_y,
        face_w=face_w, chin_y=chin_y, top_y=top_y, face_cy=face_cy, face_h=face_h,
        contour=contour,
    )


def _paint_body(img, rng: np.random.Generator, f: SimpleNamespace) -> None:
    """Clothes, neck, shoulders and the shadow under the chin."""
    u, P, C = rng.uniform, f.P, f.C
    cx, face_w, chin_y, shadow = f.cx, f.face_w, f.chin_y, f.shadow
    cloth = u(15, 230, 3) if u() < 0.7 else np.full(3, u(15, 70))
    neck_w = face_w * u(0.5, 0.62)
    sh_y = chin_y + u(0.02, 0.07)
    P.ellipse(img, (cx, sh_y + 0.26), (u(0.42, 0.55), 0.25), cloth)
    P.fill(img, [[cx - neck_w, chin_y - 0.12], [cx + neck_w, chin_y - 0.12],
                 [cx + neck_w * 1.1, sh_y + 0.01], [cx - neck_w * 1.1, sh_y + 0.01]], shadow * 1.1)
    neckline = rng.integers(3)
    if neckline == 1:  # V neck
        P.fill(img, [[cx - neck_w * 1.1, sh_y], [cx + neck_w * 1.1, sh_y],
                     [cx, sh_y + u(0.05, 0.12)]], shadow * 1.1)
    elif neckline == 2:  # round neck
        P.ellipse(img, (cx, sh_y), (neck_w * 1.15, u(0.02, 0.05)), shadow * 1.1, a0=0, a1=180)
    # shadow under the chin
    _blend(img, P.box(cx - face_w, chin_y - 0.05, cx + face_w, chin_y + 0.06, 0.02),
           lambda m, o: P.at(o).ellipse(m, (cx, chin_y + 0.005), (neck_w * 1.1, 0.03), 255),
           shadow * 0.75, 0.6, P.scale * C * 0.012)


def _paint_hair_back(img, rng: np.random.Generator, f: SimpleNamespace) -> None:
    """Hair behind the head; sets the hair extent (``crown_y``, ``hair_w``, ``hair_cy``)."""
    u, P = rng.uniform, f.P
    cx, hair = f.cx, f.hair
    f.crown_y = crown_y = f.top_y - u(0.02, 0.06)
    f.hair_w = hair_w = f.face_w * u(1.1, 1.28)
    f.hair_cy = hair_cy = f.face_cy - f.face_h * 0.15
    hair_dark = hair * 0.8
    if not f.bald:
        P.ellipse(img, (cx, hair_cy), (hair_w, hair_cy - crown_y), hair_dark, a0=180, a1=360)
        if f.hair_len >= 1:
            bottom = f.mouth_y + u(0.0, 0.06) if f.hair_len == 1 else u(0.95, 1.1)
            side = hair_w * (1.0 if f.hair_len == 1 else u(1.02, 1.15))
            P.fill(img, [[cx - hair_w, hair_cy], [cx + hair_w, hair_cy],
                         [cx + side, bottom - 0.03], [cx + side * 0.9, bottom],
                         [cx - side * 0.9, bottom], [cx - side, bottom - 0.03]], hair_dark)


def _paint_ears(img, f: SimpleNamespace) -> None:
    P, shadow = f.P, f.shadow
    ear_y = (f.eye_y + f.nose_y) / 2
    for sgn in (-1, 1):
        ex = f.cx + sgn * f.face_w * 0.96
        P.ellipse(img, (ex, ear_y), (0.03, 0.058), shadow * 1.15, angle=-sgn * 8)
        P.ellipse(img, (ex + sgn * 0.005, ear_y), (0.014, 0.036), shadow * 0.95, angle=-sgn * 8)


def _paint_face(img, rng: np.random.Generator, f: SimpleNamespace) -> None:
    """The face with soft shading: darker rim, light from one side (sets ``light``)."""
    u, P, C = rng.uniform, f.P, f.C
    cx, face_w, face_cy, face_h, contour = f.cx, f.face_w, f.face_cy, f.face_h, f.contour
    P.fill(img, contour, f.skin)
    f.light = light = u(-1, 1)  # > 0: light from the image's left, so the right side is darker
    _blend(img, P.box(cx - face_w, f.top_y, cx + face_w, f.chin_y, 0.03),
           lambda m, o: (P.at(o).fill(m, contour, 255),
                         P.at(o).ellipse(m, (cx - light * face_w * 0.22, face_cy + 0.03),
                                         (face_w * 0.88, face_h * 1.0), 0)),
           f.shadow, u(0.3, 0.45), P.scale * C * 0.03)


def _paint_hair_front(img, rng: np.random.Generator, f: SimpleNamespace) -> None:
    """Hair in front: a cap over the forehead with strands, an optional fringe."""
    u, P = rng.uniform, f.P
    cx, eye_y, face_w, hair = f.cx, f.eye_y, f.face_w, f.hair
    hair_w, hair_cy, crown_y, fringe = f.hair_w, f.hair_cy, f.crown_y, f.fringe
    hairline = eye_y - u(0.14, 0.19)
    if f.bald:
        return
    cap = [[cx + hair_w * np.cos(a), hair_cy + (hair_cy - crown_y) * np.sin(a)]
           for a in np.linspace(np.pi, 2 * np.pi, 30)]
    temple_y = hairline + u(0.05, 0.09)
    part = u(-0.6, 0.6)
    for a in np.linspace(1, -1, 21):
        cap.append([cx + face_w * 1.02 * a,
                    temple_y + (hairline - temple_y) * (1 - a * a) ** 0.5 + 0.02 * max(0, 1 - abs(a - part) * 6)])
    fringe_poly = None
    if fringe == 1:  # side sweep from the parting over part of the forehead
        sgn = rng.choice([-1, 1])
        fringe_poly = [[cx + part * face_w * 0.8, hairline - 0.05], [cx + sgn * face_w * 1.02, hairline - 0.03],
                       [cx + sgn * face_w * 1.0, hairline + u(0.07, 0.11)],
                       [cx + sgn * face_w * 0.5, hairline + u(0.04, 0.07)],
                       [cx - sgn * face_w * 0.1, hairline + u(0.0, 0.03)],
                       [cx - sgn * face_w * 0.6, hairline - 0.02]]
    elif fringe == 2:
        fy = eye_y - u(0.075, 0.1)
        fringe_poly = [[cx - face_w * 1.02, hairline - 0.03], [cx + face_w * 1.02, hairline - 0.03],
                       [cx + face_w * 0.99, fy + 0.015]]
        for a in np.linspace(1, -1, 13):
            fringe_poly.append([cx + face_w * 0.93 * a, fy + 0.008 * np.cos(a * 11)])
        fringe_poly.append([cx - face_w * 0.99, fy + 0.015])
    strands = []
    n_str = 28
    for i in range(n_str):
        a = (i + u(0, 1)) / n_str
        x_end = cx + face_w * 1.05 * (2 * a - 1)
        x_start = cx + face_w * part * 0.8 + u(-0.01, 0.01)
        y_start = crown_y + 0.03
        y_end = temple_y + (hairline - temple_y) * max(0.0, 1 - (2 * a - 1) ** 2) ** 0.5 + u(0.0, 0.03)
        if fringe == 2:
            y_end = max(y_end, eye_y - 0.09)
        k = np.linspace(0, 1, 8)[:, None]
        mid = np.array([(x_start + x_end) / 2 + (x_end - x_start) * 0.35, min(y_start, y_end) - 0.01])
        pts = (1 - k) ** 2 * [x_start, y_start] + 2 * (1 - k) * k * mid + k ** 2 * [x_end, y_end]
        strands.append((pts, hair * (0.6 if i % 2 else 1.35) + (0 if i % 2 else 12)))

    def cap_mask(m, o):
        p = P.at(o)
        p.fill(m, cap, 255)
        if fringe_poly is not None:
            p.fill(m, fringe_poly, 255)

    def cap_content(layer, o):
        p = P.at(o)
        layer[:] = np.clip(hair, 0, 255).astype(np.uint8)
        for pts, col in strands:
            p.line(layer, pts, np.clip(col, 0, 255), 0.004)

    _blend(img, P.box(cx - hair_w, crown_y, cx + hair_w, eye_y, 0.02), cap_mask, cap_content)


def _paint_nose(img, rng: np.random.Generator, f: SimpleNamespace) -> None:
    """Side shading, tip highlight, nostrils."""
    u, P, C = rng.uniform, f.P, f.C
    eye_y, skin, shadow = f.eye_y, f.skin, f.shadow
    nx, ny = f.lm[2]
    nose_w = 0.036 * u(0.85, 1.2)
    nb = P.box(nx - 0.08, eye_y - 0.04, nx + 0.08, ny + 0.05, 0.02)
    side = 1 if f.light > 0 else -1
    _blend(img, nb, lambda m, o: P.at(o).line(
        m, [[nx + side * 0.02, eye_y + 0.005], [nx + side * 0.024, ny - 0.035], [nx + side * nose_w, ny]],
        255, 0.014), shadow, u(0.35, 0.55), P.scale * C * 0.01)
    _blend(img, nb, lambda m, o: P.at(o).ellipse(m, (nx, ny + 0.013), (nose_w * 0.95, 0.016), 255, a0=0, a1=180),
           shadow, 0.5, P.scale * C * 0.006)
    _blend(img, nb, lambda m, o: P.at(o).ellipse(m, (nx - side * 0.004, ny - 0.006), (0.011, 0.01), 255),
           np.minimum(skin * 1.12 + 12, 255), 0.5, P.scale * C * 0.008)
    for sgn in (-1, 1):
        P.ellipse(img, (nx + sgn * nose_w * 0.48, ny + 0.013), (0.0105, 0.006), skin * 0.4, angle=sgn * 15)


def _paint_cheeks(img, rng: np.random.Generator, f: SimpleNamespace) -> None:
    """Blush on half of the faces."""
    u, P, C = rng.uniform, f.P, f.C
    nose_y, skin = f.nose_y, f.skin
    if u() < 0.5:
        for sgn in (-1, 1):
            ccx = f.cx + sgn * f.half_iod * 1.15
            _blend(img, P.box(ccx - 0.08, nose_y - 0.06, ccx + 0.08, nose_y + 0.07, 0.02),
                   lambda m, o, ccx=ccx: P.at(o).ellipse(m, (ccx, nose_y + 0.005), (0.045, 0.028), 255),
                   np.clip(skin * [1.05, 0.78, 0.78], 0, 255), u(0.15, 0.35), P.scale * C * 0.02)


def _paint_eyes(img, rng: np.random.Generator, f: SimpleNamespace) -> None:
    """Eyes (white, iris, pupil, highlight, lids) and brows."""
    u, P, C = rng.uniform, f.P, f.C
    skin, shadow, hair, lm = f.skin, f.shadow, f.hair, f.lm
    eye_hw = 0.043 * u(0.88, 1.12)
    eye_hh = 0.0165 * u(0.8, 1.2)
    iris_col = _IRIS_COLORS[rng.choice(len(_IRIS_COLORS), p=_IRIS_WEIGHTS / _IRIS_WEIGHTS.sum())]
    iris_r = eye_hw * u(0.42, 0.5)
    gaze = u(-0.15, 0.15) * eye_hw
    white = np.array([236, 232, 226]) * u(0.82, 0.97)
    brow_col = np.clip(hair * (0.6 if hair.mean() > 140 else 0.85), 0, 255) if not f.bald else skin * 0.5
    brow_th, brow_h, brow_arch = u(0.008, 0.016), u(0.042, 0.06), u(0.005, 0.02)
    slant = u(-0.004, 0.006)
    for k, sgn in ((0, -1), (1, 1)):
        ex, ey = lm[k]
        a = np.linspace(0, np.pi, 16)
        # sgn * cos runs from the outer corner to the inner one; outer corners lift by `slant`
        upper = np.stack([ex + sgn * eye_hw * np.cos(a), ey - eye_hh * np.sin(a) ** 0.8 - slant * np.cos(a)], 1)
        lower = np.stack([ex - sgn * eye_hw * np.cos(a), ey + eye_hh * 0.7 * np.sin(a) + slant * np.cos(a)], 1)
        eye_poly = np.concatenate([upper, lower])
        eb = P.box(ex - eye_hw * 1.6, ey - eye_hh * 3, ex + eye_hw * 1.6, ey + eye_hh * 2, 0.01)
        _blend(img, eb, lambda m, o: P.at(o).ellipse(m, (ex, ey - 0.006), (eye_hw * 1.25, eye_hh * 2.0), 255),
               shadow, 0.35, P.scale * C * 0.01)
        ic = (ex + gaze, ey + 0.001)

        def eye_content(layer, o, ic=ic):
            p = P.at(o)
            layer[:] = white.astype(np.uint8)
            p.ellipse(layer, ic, (iris_r, iris_r), iris_col)
            p.ellipse(layer, ic, (iris_r, iris_r), iris_col * 0.5, thickness=0.004)
            p.ellipse(layer, ic, (iris_r * 0.45, iris_r * 0.45), (12, 10, 10))
            p.ellipse(layer, (ic[0] + iris_r * 0.3, ic[1] - iris_r * 0.35), (iris_r * 0.2, iris_r * 0.2),
                      (245, 245, 245))

        _blend(img, eb, lambda m, o: P.at(o).fill(m, eye_poly, 255), eye_content)
        P.line(img, upper, skin * 0.2, 0.006)  # upper lid and lashes
        P.line(img, lower[3:-3], shadow * 0.85, 0.0025)
        bt = np.linspace(0, 1, 14)  # 0: inner end, 1: outer end
        bx = ex + sgn * (bt * 2 - 1) * eye_hw * 1.25 + sgn * 0.004
        by = ey - brow_h - brow_arch * np.sin(np.pi * bt ** 0.8) + 0.006 * bt
        th = brow_th * (1 - 0.6 * bt ** 1.5)
        band = np.concatenate([np.stack([bx, by - th / 2], 1), np.stack([bx, by + th / 2], 1)[::-1]])
        P.fill(img, band, brow_col)


def _paint_mouth(img, rng: np.random.Generator, f: SimpleNamespace) -> None:
    """Lips (upper, lower, seam), a lower-lip highlight and the shadow below it."""
    u, P, C = rng.uniform, f.P, f.C
    skin, shadow = f.skin, f.shadow
    (mlx, mly), (mrx, mry) = f.lm[3], f.lm[4]
    lip = np.clip(skin * [0.9, 0.62, 0.62] + [12, 0, 4], 0, 255)
    if u() < 0.15:
        lip = np.array([165, 35, 50]) * u(0.7, 1.1)
    up_h, lo_h, smile = u(0.011, 0.019), u(0.015, 0.025), u(-0.003, 0.01)
    tl = np.linspace(0, 1, 19)
    xs = mlx + (mrx - mlx) * tl
    line_y = (mly + mry) / 2 + smile * np.sin(np.pi * tl) - smile * 0.6
    line_y = line_y - (line_y[0] - mly) * (1 - tl) - (line_y[-1] - mry) * tl  # corners stay on the landmarks
    bow = up_h * np.sin(np.pi * tl) ** 0.7 * (1 - 0.35 * np.exp(-((tl - 0.5) / 0.07) ** 2))
    seam = np.stack([xs, line_y], 1)
    P.fill(img, np.concatenate([np.stack([xs, line_y - bow], 1), seam[::-1]]), lip * 0.9)
    P.fill(img, np.concatenate([seam, np.stack([xs, line_y + lo_h * np.sin(np.pi * tl) ** 0.8], 1)[::-1]]), lip)
    P.line(img, seam, lip * 0.4, 0.004)
    mb = P.box(mlx, line_y.min() - 0.02, mrx, line_y.max() + 0.05, 0.01)
    _blend(img, mb, lambda m, o: P.at(o).ellipse(m, ((mlx + mrx) / 2, line_y.mean() + lo_h * 0.55), (0.028, 0.006), 255),
           np.minimum(lip * 1.3 + 15, 255), 0.35, P.scale * C * 0.006)
    _blend(img, mb, lambda m, o: P.at(o).ellipse(m, ((mlx + mrx) / 2, line_y.mean() + lo_h * 1.5), (0.03, 0.008), 255),
           shadow, 0.3, P.scale * C * 0.008)


def _camera(img, rng: np.random.Generator, size: int) -> np.ndarray:
    """Area downsampling to ``size``, then blur, a global light gradient, contrast, noise."""
    u = rng.uniform
    out = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    if u() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), u(0.3, 0.8))
    gl = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    d = u(-1, 1, 2) * [0.3, 0.15]
    gain = (1 + gl[None, :] * d[0] + gl[:, None] * d[1]) * u(0.85, 1.15)
    f = out.astype(np.float32)
    f = (f - 128) * gain[:, :, None] + (128 + u(-12, 12))
    f += rng.standard_normal(f.shape, dtype=np.float32) * u(1.0, 4.0)
    return np.clip(f + 0.5, 0, 255).astype(np.uint8)


_SYNTHETIC_BANNER_SHOWN = False


@contextlib.contextmanager
def banner_silenced():
    """Build synthetic faces without the banner, where they are chosen on purpose and the
    user did not ask for a training source (the redistributable sample faces of
    ``tflite.convert --android``): the banner would read as a mistake of theirs."""
    global _SYNTHETIC_BANNER_SHOWN
    before, _SYNTHETIC_BANNER_SHOWN = _SYNTHETIC_BANNER_SHOWN, True
    try:
        yield
    finally:
        _SYNTHETIC_BANNER_SHOWN = before


class SyntheticSource(FaceSource):
    """Procedurally drawn frontal faces: the built-in default that needs no data.

    Faces are drawn with OpenCV (anti-aliased) at twice the target size and
    area-downsampled: varied skin tones, face shapes, hair styles and colors, eyes,
    brows, nose, lips, ears, neck and clothes, backgrounds, lighting, pose jitter and
    sensor noise. Face ``i`` of the train split is fully determined by
    ``(data.seed, i)``; train faces are ids ``0 .. synthetic_count - 1`` (shuffled per
    epoch like a folder), eval faces come from a separate random stream, so the splits
    are disjoint. Landmarks are the true positions of the drawn features.

    They are NOT real photos: good for smoke tests, demos and CI, not for a model that
    must work on real faces. Creating the source logs a loud warning.
    """

    name = "synthetic"
    synthetic = True

    BANNER = (
        "\n" + "=" * 78 + "\n"
        "  Using the built-in SYNTHETIC face source: procedurally drawn faces, NOT real\n"
        "  photos. A model trained on them will not work well on real faces.\n"
        "  Pass --data-dir DIR (a folder of face photos) or --tfds celeb_a for real faces.\n"
        + "=" * 78
    )

    def __init__(self, data_cfg: DataConfig):
        super().__init__(data_cfg)
        if int(data_cfg.synthetic_count) < 1:
            raise SourceError(f"data.synthetic_count must be >= 1, got {data_cfg.synthetic_count}")
        global _SYNTHETIC_BANNER_SHOWN
        if not _SYNTHETIC_BANNER_SHOWN:  # once per process: a run builds several datasets
            logger.warning(self.BANNER)
            _SYNTHETIC_BANNER_SHOWN = True

    def describe(self) -> str:
        return (
            f"synthetic faces (procedurally drawn, not real photos; "
            f"{self.cfg.synthetic_count} train, {self.cfg.eval_count} eval, seed {self.cfg.seed})"
        )

    def num_examples(self, split: str) -> int | None:
        _check_split(split)
        return int(self.cfg.synthetic_count if split == "train" else self.cfg.eval_count)

    def _render(self, stream: int) -> Callable:
        size, seed = self.image_size, int(self.cfg.seed)

        def render_np(face_id):
            return render_synthetic_face(seed, int(face_id), size, stream)

        def render(index, face_id):
            img, lm = tf.numpy_function(render_np, [face_id], (tf.uint8, tf.float32),
                                        stateful=False)
            img.set_shape((size, size, 3))
            lm.set_shape((5, 2))
            return {"image": img, "landmarks": lm, "index": index}

        return render

    def dataset(self, split: str, *, start: int = 0, keep=None) -> tf.data.Dataset:
        _check_split(split)
        if split == "train":
            ds = _train_item_stream(int(self.cfg.synthetic_count), self.cfg.seed, start,
                                    self.cfg.shuffle_files)
            stream = 0
        else:
            ds = tf.data.Dataset.range(int(self.cfg.eval_count)).map(lambda i: (i, i))
            stream = 1
        return _keep_indices(ds, keep).map(self._render(stream), num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True)
