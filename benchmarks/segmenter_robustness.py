"""How well the occluder segmenter finds occluders drawn unlike its training data.

    PYTHONPATH=$PWD python benchmarks/segmenter_robustness.py \\
        [--segmenter android_demo_assets/segmenter/segmenter_int8.tflite | RUN_DIR] \\
        [--faces ../shared/data/faces-dev --count 48]

The segmenter is trained on occluders drawn at 2x its 64 px input and shrunk. Here they
are drawn at photo resolution instead and the face is aligned as restore aligns it:

- ``astronaut``: ``skimage.data.astronaut()`` (512 px, public domain) with each occluder
  drawn on the photo at its detected landmarks, for several seeds (face-mask styles,
  sunglasses, eye bars), aligned by those landmarks to the template at 128 px with
  restore's own :func:`tfface.faces.align.align_face`;
- ``faces``: faces of a folder never seen in training (default: faces-dev), resized to
  256 px (4x the segmenter's side), occluders drawn there at the template's landmarks,
  then the crop shrunk to 128 px as restore's crops are.

Printed per set and occluder: mean IoU of ``p > 0.5`` against the drawn occluder, the
worst single face's IoU, and the share of the occluder's pixels found (recall).
"""

from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

import tfface  # noqa: F401
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OCCLUDERS = ("facemask", "sunglasses", "eye_bar")


def _scores(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    inter = float((pred & true).sum())
    union = float((pred | true).sum())
    return (inter / union if union else 1.0), (inter / true.sum() if true.sum() else 1.0)


def _summary(rows) -> tuple[float, float, float]:
    """Mean IoU, mean recall, and the worst single IoU (a skin-coloured mask is the hard case)."""
    a = np.asarray(rows)
    return float(a[:, 0].mean()), float(a[:, 1].mean()), float(a[:, 0].min())


def _occlude(rgb: np.ndarray, lm_frac: np.ndarray, name: str, seed: int):
    from tfface.data import occlusion as occ

    o = occ.occlude(tf.constant(rgb), tf.constant(lm_frac, tf.float32),
                    tf.constant([seed, 11], tf.int64), {name: 1.0}, occ.default_occluders([name]))
    px = np.clip(np.round(o["occluded"].numpy()), 0, 255).astype(np.uint8)
    return px, o["mask"].numpy()[..., 0] > 0.5


def astronaut_set(seg, seeds: int):
    from skimage import data

    from tfface.faces import align as al
    from tfface.faces import make_detector

    rgb = data.astronaut()
    lm = make_detector("mtcnn").detect(rgb)[0].landmarks
    out = {}
    for name in OCCLUDERS:
        rows = []
        for seed in range(seeds):
            px, hole = _occlude(rgb, lm / rgb.shape[0], name, seed)
            crop, m = al.align_face(px, lm, 128)
            true = cv2.warpAffine(hole.astype(np.float32), m, (128, 128)) > 0.5
            rows.append(_scores(seg.hole(crop), true))
        out[name] = _summary(rows)
    return out


def _compose_mask(hole: np.ndarray, lm: np.ndarray, placements, size=(768, 1024)):
    """The occluder's pixels of a scene of :func:`benchmarks.restore_photo.compose_scene`
    (the same head crop, ellipse alpha and warps)."""
    h, w = size
    c = lm[:2].mean(0)
    d = np.linalg.norm(lm[1] - lm[0])
    half = int(2.6 * d)
    x0, y0 = int(c[0]) - half, int(c[1]) - half
    head = hole.astype(np.float32)[max(y0, 0):y0 + 2 * half, max(x0, 0):x0 + 2 * half]
    hh, hw = head.shape[:2]
    alpha = np.zeros((hh, hw), np.float32)
    cv2.ellipse(alpha, (hw // 2, hh // 2), (int(hw * 0.42), int(hh * 0.48)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (31, 31), 0)
    out = np.zeros((h, w), np.float32)
    for cx, cy, eye_px, deg in placements:
        m = cv2.getRotationMatrix2D((hw / 2, hh / 2), deg, eye_px / d)
        m[:, 2] += np.array([cx, cy], np.float64) - [hw / 2, hh / 2]
        a = cv2.warpAffine(alpha, m, (w, h))
        out = out * (1 - a) + cv2.warpAffine(head, m, (w, h), flags=cv2.INTER_AREA) * a
    return out


def scenes_set(seg, seeds: int):
    """The 1024x768 scenes of benchmarks/restore_photo.py (one face tilted 10 degrees,
    four faces of 30-56 px eye distance), faces found by MTCNN as restore finds them."""
    from skimage import data

    from tfface.faces import align as al
    from tfface.faces import make_detector

    sys.path.insert(0, ROOT)
    from benchmarks.restore_photo import FOUR, ONE, compose_scene

    rgb = data.astronaut()
    det = make_detector("mtcnn")
    lm = det.detect(rgb)[0].landmarks
    out = {}
    for name in OCCLUDERS:
        rows = []
        for seed in range(seeds):
            px, hole = _occlude(rgb, lm / rgb.shape[0], name, seed)
            for placements in (ONE, FOUR):
                scene = compose_scene(px, lm, placements)
                smask = _compose_mask(hole, lm, placements)
                for face in det.detect(scene):
                    crop, m = al.align_face(scene, face.landmarks, 128)
                    true = cv2.warpAffine(smask, m, (128, 128)) > 0.5
                    rows.append(_scores(seg.hole(crop), true))
        out[name] = _summary(rows)
    return out


def faces_set(seg, folder: str, count: int):
    from tfface.faces.align import TEMPLATE

    files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".png")))[:count]
    out = {}
    for name in OCCLUDERS:
        rows = []
        for i, f in enumerate(files):
            bgr = cv2.imread(os.path.join(folder, f))
            h, w = bgr.shape[:2]
            s = min(h, w)
            sq = bgr[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s, ::-1]
            big = cv2.resize(sq, (256, 256), interpolation=cv2.INTER_AREA)
            px, hole = _occlude(np.ascontiguousarray(big), np.asarray(TEMPLATE), name, i)
            crop = cv2.resize(px, (128, 128), interpolation=cv2.INTER_AREA)
            true = cv2.resize(hole.astype(np.float32), (128, 128), interpolation=cv2.INTER_AREA) > 0.5
            rows.append(_scores(seg.hole(crop), true))
        out[name] = _summary(rows)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--segmenter", default=os.path.join(ROOT, "android_demo_assets", "segmenter",
                                                       "segmenter_int8.tflite"))
    p.add_argument("--faces", default=os.path.join(ROOT, "..", "shared", "data", "faces-dev"))
    p.add_argument("--count", type=int, default=48)
    p.add_argument("--seeds", type=int, default=12)
    args = p.parse_args(argv)
    from tfface.faces.segmenter import OccluderSegmenter

    seg = OccluderSegmenter(args.segmenter)
    print(f"segmenter {args.segmenter}")
    sets = {"astronaut (512 px photo)": astronaut_set(seg, args.seeds),
            "astronaut scenes (1024x768, detected)": scenes_set(seg, max(args.seeds // 3, 1))}
    if os.path.isdir(args.faces):
        sets[f"{os.path.basename(os.path.normpath(args.faces))} at 256 px"] = \
            faces_set(seg, args.faces, args.count)
    for title, res in sets.items():
        cells = ", ".join(f"{k} IoU {v[0]:.3f} (worst {v[2]:.3f}) recall {v[1]:.3f}"
                          for k, v in res.items())
        print(f"  {title}: {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
