"""Alignment to the training framing and paste-back into the photo.

The canonical template (:data:`tfface.framing.TEMPLATE`, ``template.json`` beside this
module) gives the five landmarks as fractions of the square training crop. It was measured on the
training faces themselves (``benchmarks/face_template.py``: the detector's landmarks on
500 photos of faces-train, moved into the centred square that the folder source crops
and divided by its side, averaged), so an aligned crop of a real photo is framed as the
faces the models learned from.

* :func:`similarity` — the least-squares similarity (rotation, uniform scale,
  translation; Umeyama, no reflection) from a face's landmarks to the template.
* :func:`align_face` — the crop (``cv2.warpAffine``; a face much larger than the crop
  is first shrunk with an area filter, so the crop is not aliased) and its 2x3 matrix.
* :func:`face_weight` — the feathered blend weight of a whole face in crop
  coordinates: 1 inside a rounded region of the crop, falling smoothly to exactly 0
  before the crop's border, so nothing outside the warped crop is touched.
* :func:`paste_back` — warps a restored crop and its weight back into the photo (only
  over the face's bounding box) and blends ``photo + w · (restored - photo)``; pixels
  where ``w == 0`` keep their exact values.
"""

from __future__ import annotations

import cv2
import numpy as np

from tfface.framing import TEMPLATE

def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity mapping ``src`` points onto ``dst``."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    var = (a ** 2).sum() / len(src)
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    r = u @ np.diag(sign) @ vt
    scale = (d * sign).sum() / max(var, 1e-12)
    m = np.zeros((2, 3))
    m[:, :2] = scale * r
    m[:, 2] = mu_d - scale * r @ mu_s
    return m


def invert(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def transform_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64)
    return pts @ np.asarray(m)[:, :2].T + np.asarray(m)[:, 2]


def matrix_scale(m: np.ndarray) -> float:
    """Uniform scale of a similarity matrix (crop px per photo px)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(m)[:, :2]))))


def alignment_matrix(landmarks: np.ndarray, size: int, template: np.ndarray | None = None
                     ) -> np.ndarray:
    """Photo px → crop px of a ``size``-pixel aligned crop (pixel centres at i + 0.5 in
    fractions, so a template point ``t`` lands at ``t · size - 0.5``)."""
    t = TEMPLATE if template is None else np.asarray(template, np.float64)
    return similarity(landmarks, t * float(size) - 0.5)


def native_size(landmarks: np.ndarray, template: np.ndarray | None = None) -> float:
    """The crop side at which the face keeps the photo's resolution (scale 1)."""
    return 1.0 / matrix_scale(alignment_matrix(landmarks, 1000, template)) * 1000.0


def align_face(rgb: np.ndarray, landmarks: np.ndarray, size: int,
               template: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The aligned ``size`` x ``size`` crop of the face and the 2x3 photo → crop matrix."""
    m = alignment_matrix(landmarks, size, template)
    s = matrix_scale(m)
    src, mm = rgb, m
    if s < 0.5:  # shrink first with an area filter: warpAffine alone would alias
        f = s * 1.5
        h, w = rgb.shape[:2]
        nw, nh = max(1, int(round(w * f))), max(1, int(round(h * f)))
        src = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        fx, fy = nw / w, nh / h
        # small-photo px = (photo px + 0.5) · f - 0.5
        a = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1]])
        mm = np.vstack([m, [0, 0, 1]]) @ np.linalg.inv(a)
        mm = mm[:2]
    crop = cv2.warpAffine(src, mm, (size, size), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT_101)
    return crop, m


def native_crop(rgb: np.ndarray, landmarks: np.ndarray, size: int,
                template: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned ``size`` crop at integer offsets, centred where the template
    framing would put the crop (photo borders reflected); returns it and its (pure
    translation) photo → crop matrix. No pixel is resampled."""
    m = alignment_matrix(landmarks, size, template)
    c = transform_points(invert(m), [[size / 2 - 0.5, size / 2 - 0.5]])[0]
    x0 = int(round(c[0] - size / 2 + 0.5))
    y0 = int(round(c[1] - size / 2 + 0.5))
    h, w = rgb.shape[:2]
    pad = max(0, -x0, -y0, x0 + size - w, y0 + size - h)
    src = rgb
    if pad:
        src = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    crop = src[y0 + pad:y0 + pad + size, x0 + pad:x0 + pad + size].copy()
    return crop, np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])


def face_weight(size: int, feather: float = 0.1) -> np.ndarray:
    """float32 ``[size, size]`` blend weight of a whole restored face.

    A rounded square inset from the crop's border by ``feather`` (fraction of the
    side), blurred over the same width: exactly 0 on the outermost ``feather / 2`` of
    the crop, 1 in its middle.
    """
    f = max(2, int(round(size * feather)))
    w = np.zeros((size, size), np.float32)
    r = max(1, f)
    cv2.rectangle(w, (f + r // 2, f), (size - 1 - f - r // 2, size - 1 - f), 1.0, -1)
    cv2.rectangle(w, (f, f + r // 2), (size - 1 - f, size - 1 - f - r // 2), 1.0, -1)
    lo, hi = f + r // 2, size - 1 - f - r // 2
    for cx, cy in ((lo, lo), (hi, lo), (lo, hi), (hi, hi)):
        cv2.circle(w, (cx, cy), r // 2, 1.0, -1)
    k = f | 1
    w = cv2.GaussianBlur(w, (k, k), 0)
    w[: f // 2] = 0
    w[-(f // 2):] = 0
    w[:, : f // 2] = 0
    w[:, -(f // 2):] = 0
    return np.clip(w, 0.0, 1.0)


def crop_px(px: int, side: int) -> int:
    """``px`` pixels of a 128 px crop in a crop of ``side`` px (the same part of the
    face; never fewer than ``px``, so a crop under 128 px keeps ``px``): a found hole's
    growth and soft edge cover as much of the face whatever the file's resolution (at
    256 px, 2 px of growth would cover half the occluder's rim that the 128 px file's 2 px
    cover, and leave the rest of it in the photo)."""
    return int(px) if side <= 128 else int(round(px * side / 128))


def hole_weight(mask: np.ndarray, grow: int = 2, feather: int = 2) -> np.ndarray:
    """float32 blend weight of a hole (1 = hole): grown by ``grow`` px (covers the
    occluder's edge), then softened over ``feather`` px outward; 0 beyond."""
    m = (np.asarray(mask) > 0.5).astype(np.uint8)
    if grow > 0:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                    (2 * grow + 1, 2 * grow + 1)))
    if feather <= 0:
        return m.astype(np.float32)
    # distance outside the grown hole → weight 1 at the hole, 0 at ``feather`` px
    dist = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    return np.clip(1.0 - dist / float(feather + 1), 0.0, 1.0).astype(np.float32)


def paste_back(photo: np.ndarray, restored: np.ndarray, m: np.ndarray, weight: np.ndarray,
               out: np.ndarray | None = None) -> np.ndarray:
    """Blend ``restored`` (crop px, aligned by ``m``: photo px → crop px) into ``photo``.

    ``weight`` (crop px, [0, 1]) is warped back with the crop; the blend runs only
    over the bounding box of the warped crop and writes into ``out`` (default: a copy
    of ``photo``). Pixels with zero weight are left exactly as they were.
    """
    if out is None:
        out = photo.copy()
    h, w = photo.shape[:2]
    size = restored.shape[0]
    corners = transform_points(invert(m), [[0, 0], [size, 0], [0, size], [size, size]])
    x0 = int(np.clip(np.floor(corners[:, 0].min()) - 1, 0, w))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()) + 2, 0, w))
    y0 = int(np.clip(np.floor(corners[:, 1].min()) - 1, 0, h))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()) + 2, 0, h))
    if x1 <= x0 or y1 <= y0:
        return out
    # crop → photo box: inverse of (photo → crop) composed with the box offset
    mb = np.vstack([np.asarray(m, np.float64), [0, 0, 1]]) @ np.array(
        [[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    inv = invert(mb[:2])
    bw, bh = x1 - x0, y1 - y0
    flags = cv2.INTER_CUBIC
    face = cv2.warpAffine(restored.astype(np.float32), inv, (bw, bh), flags=flags,
                          borderMode=cv2.BORDER_REPLICATE)
    wt = cv2.warpAffine(weight.astype(np.float32), inv, (bw, bh), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    wt = np.clip(wt, 0.0, 1.0)[..., None]
    region = out[y0:y1, x0:x1].astype(np.float32)
    blended = region + wt * (face - region)
    keep = wt[..., 0] <= 0
    res = np.clip(np.round(blended), 0, 255).astype(photo.dtype)
    res[keep] = out[y0:y1, x0:x1][keep]
    out[y0:y1, x0:x1] = res
    return out
