"""Time per photo of the real-photo path, part by part, and before/after scenes.

    PYTHONPATH=$PWD python benchmarks/restore_photo.py --runs 5
    PYTHONPATH=$PWD python benchmarks/restore_photo.py --runs 5 \\
        --model android_demo_assets/vnet/model_int8_mixed.tflite   # --look fidelity

Without ``--model`` the files are ``tfface-restore``'s default for images (``--look
realism``: the shipped 128 px and 256 px V-Nets as a ladder); ``--model`` twice makes a
ladder of one's own.

Scenes are 1024x768 photos composed from ``skimage.data.astronaut()`` (public domain):
one face (off centre, tilted by 10 degrees) and four faces (different places, sizes and
tilts), each wearing a synthesized surgical mask (``--occluder``; ``none`` for SR). For
an SR model the photo is that scene shrunk by the model's scale (the output is
1024x768). Prints the median
milliseconds of detection, alignment, segmentation, restoration (the model) and
paste-back per photo (and those of the fastest run), the false faces (found faces that
hold no placed head) and the pixels changed outside the placed heads (both must be 0).
``--grid FILE`` also writes a before/after grid of the scenes
(face regions enlarged) for the docs.
"""

from __future__ import annotations

import argparse
import ast
import functools
import os
import sys
import time

import cv2
import numpy as np

import tfface  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.lru_cache(maxsize=1)
def astronaut() -> tuple[np.ndarray, np.ndarray]:
    """``skimage.data.astronaut()`` (public domain) and MTCNN's five landmarks on it
    (found once per process)."""
    from skimage import data

    from tfface.faces import make_detector

    rgb = data.astronaut()
    return rgb, make_detector("mtcnn").detect(rgb)[0].landmarks


def occluded_astronaut(occluder: str = "facemask", seed: int = 3, occluders=None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The astronaut photo with a synthesized occluder drawn on her face at the photo's
    resolution: (occluded uint8, hole float32 ``[H, W]``, landmarks). ``occluders``:
    configured generators (``occ.make_occlusion_fns``); default: the registry's.
    ``"none"`` gives the clean photo and an empty hole."""
    import tensorflow as tf

    from tfface.data import occlusion as occ

    rgb, lm = astronaut()
    if occluder == "none":
        return rgb, np.zeros(rgb.shape[:2], np.float32), lm
    o = occ.occlude(tf.constant(rgb), tf.constant(lm / rgb.shape[0], tf.float32),
                    tf.constant([seed, 0], tf.int64), {occluder: 1.0},
                    occluders or occ.default_occluders([occluder]))
    occluded = np.clip(np.round(o["occluded"].numpy()), 0, 255).astype(np.uint8)
    return occluded, o["mask"].numpy()[..., 0].astype(np.float32), lm


def _heads(face: np.ndarray, lm: np.ndarray, placements, size):
    """Each placed head of ``face``: (warped head, its soft alpha) in a ``size`` photo."""
    h, w = size
    c = lm[:2].mean(0)
    d = np.linalg.norm(lm[1] - lm[0])
    half = int(2.6 * d)
    x0, y0 = int(c[0]) - half, int(c[1]) - half
    head = face[max(y0, 0):y0 + 2 * half, max(x0, 0):x0 + 2 * half]
    hh, hw = head.shape[:2]
    alpha = np.zeros((hh, hw), np.float32)
    cv2.ellipse(alpha, (hw // 2, hh // 2), (int(hw * 0.42), int(hh * 0.48)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (31, 31), 0)
    for cx, cy, eye_px, deg in placements:
        m = cv2.getRotationMatrix2D((hw / 2, hh / 2), deg, eye_px / d)
        m[:, 2] += np.array([cx, cy], np.float64) - [hw / 2, hh / 2]
        warped = cv2.warpAffine(head, m, (w, h), flags=cv2.INTER_AREA).astype(np.float32)
        yield warped, cv2.warpAffine(alpha, m, (w, h))[..., None]


def compose_scene(face: np.ndarray, lm: np.ndarray, placements, size=(768, 1024), seed=0):
    """Heads of ``face`` placed at ``(cx, cy, eye_px, degrees)`` on a soft background."""
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([90 + 60 * xx / w, 110 + 40 * yy / h, 140 + 30 * np.sin(xx / 90.0)], -1)
    scene = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
    out = scene.astype(np.float32)
    for warped, a in _heads(face, lm, placements, size):
        out = out * (1 - a) + warped * a
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def head_region(face: np.ndarray, lm: np.ndarray, placements, size=(768, 1024)) -> np.ndarray:
    """bool photo mask of every pixel a placed head covers (its alpha above 0)."""
    region = np.zeros(size, bool)
    for _, a in _heads(face, lm, placements, size):
        region |= a[..., 0] > 0
    return region


def false_faces(faces, placements, k: int = 1) -> int:
    """Found faces whose box holds no placed head's centre (eye midpoint; ``k``: the
    photo's scale, SR photos are the scene shrunk by ``k``)."""
    return sum(not any(f.box[0] <= cx / k <= f.box[2] and f.box[1] <= cy / k <= f.box[3]
                       for cx, cy, _, _ in placements) for f in faces)


ONE = [(620, 330, 60, 10)]
FOUR = [(200, 220, 44, 8), (520, 420, 56, -12), (820, 250, 36, 4), (380, 620, 30, -20)]


class Timed:
    """Wraps functions to add up their milliseconds by name in ``t``."""

    def __init__(self):
        self.t = {}

    def wrap(self, name, fn):
        def inner(*a, **k):
            t0 = time.perf_counter()
            r = fn(*a, **k)
            self.t[name] = self.t.get(name, 0.0) + (time.perf_counter() - t0) * 1e3
            return r
        return inner


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append",
                   help="model file; repeat it for a ladder of sizes (default: tfface-restore's "
                   "for images, the shipped 128 px and 256 px V-Nets)")
    p.add_argument("--segmenter", default=os.path.join(ROOT, "android_demo_assets", "segmenter",
                                                       "segmenter_int8.tflite"))
    p.add_argument("--detector", default="auto",
                   help="a face detector name, with :key=value options (auto:search_side=512)")
    p.add_argument("--occluder", default="facemask")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--grid", metavar="PNG")
    args = p.parse_args(argv)

    from tfface.faces import make_detector
    from tfface.restore.photo import FacePipeline
    from tfface.faces import align as al
    from tfface.restore import photo as fpl
    from tfface.segmenter.infer import OccluderSegmenter
    from tfface.restore.model import Restorer

    from tfface.shipped import default_models

    models = args.model or default_models()
    restorer = Restorer.load_many(models)
    seg = OccluderSegmenter(args.segmenter) if restorer.spec.task == "inpaint" else None
    name, *opts = args.detector.split(":")  # options as in face_detectors.py
    det = make_detector(name, **{k: ast.literal_eval(v) for k, _, v in
                                 (o.partition("=") for o in opts)})
    face, _, lm = occluded_astronaut(args.occluder)
    placements = {"1 face": ONE, "4 faces": FOUR}
    scenes = {n: compose_scene(face, lm, v) for n, v in placements.items()}
    if restorer.spec.task == "sr":  # SR: the photo is the 1024x768 scene shrunk by the scale
        k = int(restorer.spec.scale)
        scenes = {n: cv2.resize(v, (1024 // k, 768 // k), interpolation=cv2.INTER_AREA)
                  for n, v in scenes.items()}
    timer = Timed()
    det.detect = timer.wrap("detection", det.detect)
    for r in getattr(restorer, "restorers", [restorer]):  # a ladder: each file it may pick
        r.restore_face = timer.wrap("restoration (model)", r.restore_face)
    if seg is not None:  # hole() calls probability(): time the one both go through
        attr = "probability" if hasattr(seg, "probability") else "hole"
        setattr(seg, attr, timer.wrap("segmentation", getattr(seg, attr)))
    orig_align, orig_paste = al.align_face, al.paste_back
    fpl.al.align_face = timer.wrap("alignment", orig_align)
    fpl.al.paste_back = timer.wrap("paste-back", orig_paste)
    pipe = FacePipeline(det, seg)
    results = {}
    hw = next(iter(scenes.values())).shape
    print(f"model {' + '.join(os.path.relpath(m, ROOT) for m in models)}, "
          f"detector {args.detector}, "
          f"{hw[1]}x{hw[0]} photos, median of {args.runs} runs (ms)")
    for name, scene in scenes.items():
        pipe.restore(restorer, scene)  # warm-up
        rows = []
        for _ in range(args.runs):
            timer.t = {}
            t0 = time.perf_counter()
            out, rep = pipe.restore(restorer, scene)
            total = (time.perf_counter() - t0) * 1e3
            rows.append({**timer.t, "total": total})
        results[name] = (scene, out, rep)
        keys = ["detection", "alignment", "segmentation", "restoration (model)", "paste-back",
                "total"]
        parts = ", ".join(f"{k} {np.median([r.get(k, 0.0) for r in rows]):.0f}" for k in keys
                          if any(k in r for r in rows))
        best = min(rows, key=lambda r: r["total"])  # the least disturbed run, on a shared CPU
        fast = ", ".join(f"{k} {best[k]:.0f}" for k in keys if k in best)
        print(f"  {name}: {rep.summary()}; {parts}\n    fastest run: {fast}")
        # A face that is not one must never change a pixel: count both on the scene.
        # (the heads are placed at 1024x768, the output's size; SR photos are 1/k of it)
        k = out.shape[0] // scene.shape[0]
        region = head_region(face, lm, placements[name], out.shape[:2])
        base = scene if k == 1 else cv2.resize(scene, out.shape[1::-1],
                                               interpolation=cv2.INTER_CUBIC)
        outside = int((np.any(out != base, axis=-1) & ~region).sum())
        print(f"    false faces {false_faces(rep.faces, placements[name], k)}, pixels changed "
              f"outside the placed heads {outside}")
    fpl.al.align_face, fpl.al.paste_back = orig_align, orig_paste
    if args.grid:
        _grid(args.grid, results)
        print(f"wrote {args.grid}")
    return 0


def _grid(path: str, results) -> None:
    from tfface.imageio import write_image

    tiles = []
    for name, (scene, out, rep) in results.items():
        row = [cv2.resize(scene, (512, 384), interpolation=cv2.INTER_AREA if scene.shape[1] > 512
                          else cv2.INTER_CUBIC),
               cv2.resize(out, (512, 384), interpolation=cv2.INTER_AREA)]
        tiles.append(np.concatenate(row, 1))
        for f in rep.faces[:2]:
            x0, y0, x1, y1 = f.box.astype(int)
            m = int(0.3 * (x1 - x0))
            sl = (slice(max(y0 - m, 0), y1 + m), slice(max(x0 - m, 0), x1 + m))
            k = out.shape[1] // scene.shape[1]  # SR: the output is k times larger
            a = cv2.resize(scene[sl], (512, 512), interpolation=cv2.INTER_CUBIC)
            slk = tuple(slice(v.start * k, v.stop * k) for v in sl)
            b = cv2.resize(out[slk], (512, 512), interpolation=cv2.INTER_AREA if k > 1
                           else cv2.INTER_CUBIC)
            tiles.append(np.concatenate([a, b], 1))
    grid = np.concatenate(tiles, 0)
    grid = cv2.resize(grid, (640, grid.shape[0] * 640 // grid.shape[1]),
                      interpolation=cv2.INTER_AREA)
    write_image(path, grid)  # a .jpg path keeps the docs image small


if __name__ == "__main__":
    sys.exit(main())
