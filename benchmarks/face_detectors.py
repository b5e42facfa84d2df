"""Recall, landmark agreement and speed of the face detectors (MTCNN, BlazeFace).

    PYTHONPATH=$PWD python benchmarks/face_detectors.py /work/shared/data/faces-dev \\
        --count 200 --hard-count 50

Every faces-dev photo holds exactly one face near its centre (see its SOURCE.md), so a
photo counts as found when the detector returns a face whose box contains the photo's
centre. Three settings:

* ``dev``: the photos as they are (about 200 px);
* ``rotated D``: the photo rotated by D degrees inside a padded canvas;
* ``small P``: the photo shrunk so the face is about P px wide, pasted at a random
  place of a 640x480 grey canvas (the face's centre is tracked);
* ``masked``: a synthesized face mask (``tfface.data.occlusion``'s ``facemask``, placed at
  the measured template landmarks) over nose and mouth.

Speed: milliseconds per photo (median) on the dev photos and on the 640x480 canvases.
Landmarks: mean distance between the two detectors' eyes/nose (in eye distances) on the
dev photos where both find the face, and the mouth-corner offsets that place
BlazeFace's missing mouth corners (printed for :mod:`tfface.faces.detect`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import cv2
import numpy as np

import tfface  # noqa: F401


def _hit(faces, cx, cy):
    for f in faces:
        x0, y0, x1, y1 = f.box
        if x0 <= cx <= x1 and y0 <= cy <= y1:
            return f
    return None


def _rotated(rgb, deg):
    h, w = rgb.shape[:2]
    side = int(np.ceil(np.hypot(h, w))) + 8
    canvas = cv2.copyMakeBorder(rgb, (side - h) // 2, side - h - (side - h) // 2,
                                (side - w) // 2, side - w - (side - w) // 2,
                                cv2.BORDER_CONSTANT, value=(128, 128, 128))
    m = cv2.getRotationMatrix2D((side / 2, side / 2), deg, 1.0)
    return cv2.warpAffine(canvas, m, (side, side), borderValue=(128, 128, 128)), side / 2, side / 2


def _small(rgb, face_px, rng):
    h, w = rgb.shape[:2]
    f = face_px / (0.45 * w)  # the face is about 45 % of a faces-dev photo's width
    small = cv2.resize(rgb, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 128, np.uint8)
    sh, sw = small.shape[:2]
    x = int(rng.integers(0, 640 - sw))
    y = int(rng.integers(0, 480 - sh))
    canvas[y:y + sh, x:x + sw] = small
    return canvas, x + sw / 2, y + sh / 2


def _masked(rgb, i):
    import tensorflow as tf

    from tfface.data import occlusion as occ
    from tfface.faces.align import TEMPLATE

    h, w = rgb.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    sq = rgb[y0:y0 + s, x0:x0 + s]
    o = occ.occlude(tf.constant(sq), tf.constant(TEMPLATE), tf.constant([11, i], tf.int64),
                    {"facemask": 1.0}, occ.default_occluders(["facemask"]))
    out = rgb.copy()
    out[y0:y0 + s, x0:x0 + s] = np.clip(np.round(o["occluded"].numpy()), 0, 255).astype(np.uint8)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--hard-count", type=int, default=50)
    p.add_argument("--detectors", default="mtcnn,blazeface,auto")
    p.add_argument("--settings", default="dev,rotated,small,masked")
    args = p.parse_args(argv)
    wanted = args.settings.split(",")

    from tfface.faces.detect import make_detector
    from tfface.inference import read_photo

    files = sorted(f for f in os.listdir(args.folder) if f.endswith(".jpg"))
    step = max(1, len(files) // args.count)
    files = files[::step][: args.count]
    photos = [read_photo(os.path.join(args.folder, f)) for f in files]
    dets = {n: make_detector(n) for n in args.detectors.split(",")}
    for d in dets.values():  # warm-up (graph tracing, delegate set-up)
        d.detect(photos[0])
    settings = [("dev", None)] * ("dev" in wanted)
    settings += [(f"rotated {d}", d) for d in (20, 35)] * ("rotated" in wanted)
    settings += [(f"small {s}px", s) for s in (24, 40)] * ("small" in wanted)
    settings += [("masked", None)] * ("masked" in wanted)
    rows = {}
    found_dev = {n: {} for n in dets}
    for name, det in dets.items():
        for setting, val in settings:
            rng = np.random.default_rng(0)
            imgs = photos if setting == "dev" else photos[: args.hard_count]
            hits, times = 0, []
            for i, rgb in enumerate(imgs):
                if setting == "dev":
                    img, cx, cy = rgb, rgb.shape[1] / 2, rgb.shape[0] / 2
                elif setting.startswith("rotated"):
                    img, cx, cy = _rotated(rgb, val)
                elif setting == "masked":
                    img, cx, cy = _masked(rgb, i), rgb.shape[1] / 2, rgb.shape[0] / 2
                else:
                    img, cx, cy = _small(rgb, val, rng)
                t0 = time.perf_counter()
                faces = det.detect(img)
                times.append((time.perf_counter() - t0) * 1e3)
                f = _hit(faces, cx, cy)
                hits += f is not None
                if setting == "dev" and f is not None:
                    found_dev[name][i] = f
            rows[(name, setting)] = (hits, len(imgs), float(np.median(times)))
    print(f"{'detector':10s} {'setting':12s} {'recall':>14s} {'median ms':>10s}")
    for (name, setting), (hits, n, ms) in rows.items():
        print(f"{name:10s} {setting:12s} {hits:4d}/{n:<4d} {100 * hits / n:5.1f}% {ms:10.1f}")
    if {"mtcnn", "blazeface"} <= set(dets):
        a, b = found_dev["mtcnn"], found_dev["blazeface"]
        both = sorted(set(a) & set(b))
        if not both:
            return 0
        errs, mouth_b, mouth_w = [], [], []
        for i in both:
            la, lb = a[i].landmarks.astype(np.float64), b[i].landmarks.astype(np.float64)
            d = np.linalg.norm(la[1] - la[0])
            errs.append(np.linalg.norm(la[:3] - lb[:3], axis=1).mean() / d)
            u = (la[1] - la[0]) / d
            v = np.array([-u[1], u[0]])
            mc = lb[3:].mean(0)  # BlazeFace mouth centre (as placed)
            mouth_b.append(((la[3:].mean(0) - mc) @ v) / d)
            mouth_w.append(np.linalg.norm(la[4] - la[3]) / d)
        print(f"eyes+nose agreement on {len(both)} photos: {np.mean(errs):.3f} eye distances "
              "(mean distance between the detectors' points)")
        print(f"MTCNN mouth corners vs BlazeFace mouth centre: offset along the face's down "
              f"axis {np.mean(mouth_b):+.3f} eye distances; corner distance "
              f"{np.mean(mouth_w):.3f} eye distances")
    return 0


if __name__ == "__main__":
    sys.exit(main())
