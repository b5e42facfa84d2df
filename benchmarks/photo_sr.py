"""Whole-photo face super-resolution: composed scenes, faces by the model against bicubic.

    nice -n 5 .venv/bin/python -m benchmarks.photo_sr \\
        --model android_demo_assets/srgan/model_int8_mixed.tflite --scenes 24

**Scenes.** Each HR scene is ``--hr-size`` (default 1024x768) with 1 to ``--max-faces``
faces from ``--faces`` (default faces-hq dev: 256 px FFHQ crops, one face each; sources
where MTCNN finds no face or several are left out) on a background. The LR photo is the
scene shrunk ``x k`` with ``cv2.INTER_AREA`` (the x4 default: 1024x768 -> 256x192).

* Face size is the larger side of MTCNN's box, the measure ``--min-face`` of
  ``pipelines.restore`` uses. Each face's LR size is drawn log-uniformly from
  ``--face-range`` (default 20-120 px); its source is resized so its box spans
  ``size·k`` HR px (``INTER_AREA`` when shrinking, ``INTER_CUBIC`` when enlarging). The
  box of a faces-hq face is about 180 px, so at x4 a face above ~45 LR px (x2: ~90) has
  an **upscaled** ground truth: the table's ``GT up`` column gives the mean source
  upscale of each size bin; there the HR face holds no detail finer than its 256 px
  source, and a bin's figures measure the band the source has (and that nothing is
  made worse), not fine detail.
* The face's patch (the source's square around the box, at most its 256 px and at
  most 95 % of the scene's height) is blended in with a soft edge; patches never
  overlap.
* Background (``--background``): ``mosaic`` (default) tiles the scene with 256 px
  crops of the natural photos bundled with scikit-image (coffee, chelsea, rocket,
  motorcycle, Hubble deep field, grass, gravel, brick; random crops and flips, native
  resolution, no resampling), so non-face regions are real photo texture; ``flat`` is
  a smooth gradient.

**What runs.** ``--paths``: ``pipeline`` is :class:`tfface.restore.photo.FacePipeline` with the
detector of ``pipelines.restore`` (``--detector``, default ``auto``) and ``--min-face``
16, i.e. the code path of ``python -m pipelines.restore LOWRES --model FILE``; ``native``
is :class:`tfface.restore.sr.NativeSRPipeline` (every face cut out at its own
resolution and tiled, none warped up to the model's input). ``bicubic`` is
``cv2.INTER_CUBIC`` of the whole LR photo (the pipeline's own background).
``--scale 2`` with a x4 model runs the model and shrinks its output ÷2 (``INTER_AREA``):
the x2 mode of a x4 file.

**Measures.** Per face on its HR box (all faces, detected or not; an undetected face
stays bicubic): PSNR (8-bit RGB), SSIM (Gaussian 11, tf.image.ssim) and sharpness
(:func:`tfface.metrics.hole_sharpness` on a full-ones mask: mean Sobel gradient of the
result ÷ that of the real face, 1.0 = as sharp). Per photo: PSNR of the whole photo
and of the non-face part (outside every patch, grown by 8 HR px), and the time by part:
detection, the model on faces, the bicubic background, and the rest (crops, weights,
paste-back). ``--background-sr`` also runs the model in tiles over the whole LR photo
(:func:`tfface.restore.sr.sr_image`) and scores its non-face part and time.
``--time-photo`` times a ``--hr-size`` photo with one face as the LR input (x4 of
1024x768 is 4096x3072), part by part, with the model on the background too.

**Identity** (``--identity dlib``, with ``--faces`` a folder of photos listed in its
``IDENTITIES.csv``, e.g. faces-dev): face verification of the upscaled faces, the protocol
of ``pipelines.evaluate --identity`` (:mod:`tfface.identity.verify`). Only photos whose
person has another listed photo are put in scenes. Each scene face is cut back out of the
HR scene, bicubic's result and each path's result as its source's eval crop (the photo's
centre square at 128 px, the framing the dlib embedder knows; the same mapping for every
variant), embedded, and compared with every listed photo of the folder (its own photo
never): the threshold accepts 1 % of the HR faces' impostor pairs, and each variant's TPR
(genuine pairs accepted) and FPR at it are printed, overall and per size bin, and each
variant's TPR at its own 1 % FPR (the threshold fixed on its own impostor pairs: a variant
that passes more impostors at the shared threshold gets no credit for it). The target
of issue 36: the model's TPR at least bicubic's.

``--grid FILE`` writes LR | bicubic | result | HR crops of ``--grid-rows`` faces (it holds
dataset faces: write it under /work/scratch, never into the repository), spread over the LR
sizes or, with ``--grid-order gain``, over the result's gain over bicubic: the worst face
first, the median in the middle, the best last.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys
import time

import cv2
import numpy as np

import tfface  # noqa: F401

BINS = (20, 32, 48, 72, 121)
GRID_ROWS = 8
SKIMAGE_PHOTOS = ("coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
                  "hubble_deep_field.jpg", "grass.png", "gravel.png", "brick.png")


# ----------------------------------------------------------------------------- scenes

def load_sources(folder: str, count: int, detector, keep=None) -> list[dict]:
    """Up to ``count`` faces of ``folder`` (sorted names, evenly spread) with their MTCNN
    box: ``{"rgb", "box" (x0, y0, x1, y1), "name"}``; photos with no face or several
    are left out, and with ``keep`` (a set of names) every photo not in it."""
    from tfface.data.sources.scan import read_photo

    files = sorted(glob.glob(os.path.join(folder, "*.jpg")) + glob.glob(os.path.join(folder, "*.png")))
    if keep is not None:
        files = [f for f in files if os.path.basename(f) in keep]
    if not files:
        raise SystemExit(f"error: no .jpg/.png faces in {folder}")
    step = max(1, len(files) // max(1, count))
    out = []
    for f in files[::step]:
        rgb = read_photo(f)
        faces = detector.detect(rgb)
        if len(faces) == 1:
            out.append({"rgb": rgb, "box": np.asarray(faces[0].box, np.float64),
                        "name": os.path.basename(f)})
        if len(out) >= count:
            break
    return out


def background(kind: str, hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The scene's background (see the module docstring)."""
    h, w = hw
    if kind == "flat":
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([90 + 60 * xx / w, 110 + 40 * yy / h, 140 + 30 * np.sin(xx / 90.0)], -1)
        return np.clip(base, 0, 255).astype(np.uint8)
    from skimage import io

    root = os.path.join(os.path.dirname(__import__("skimage").__file__), "data")
    photos = []
    for name in SKIMAGE_PHOTOS:
        img = io.imread(os.path.join(root, name))
        img = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]
        photos.append(img.astype(np.uint8))
    t = 256
    out = np.zeros((int(math.ceil(h / t)) * t, int(math.ceil(w / t)) * t, 3), np.uint8)
    for y in range(0, out.shape[0], t):
        for x in range(0, out.shape[1], t):
            p = photos[rng.integers(len(photos))]
            y0 = rng.integers(p.shape[0] - t + 1)
            x0 = rng.integers(p.shape[1] - t + 1)
            tile = p[y0:y0 + t, x0:x0 + t]
            if rng.random() < 0.5:
                tile = tile[:, ::-1]
            out[y:y + t, x:x + t] = tile
    return out[:h, :w].copy()


def _soft_alpha(side: int, edge: float = 0.1) -> np.ndarray:
    r = np.minimum(np.arange(side) + 0.5, side - np.arange(side) - 0.5) / max(1.0, edge * side)
    a = np.clip(r, 0.0, 1.0)
    a = a * a * (3 - 2 * a)  # smoothstep
    return np.minimum(a[:, None], a[None, :])[..., None].astype(np.float32)


def compose_scene(sources: list[dict], rng: np.random.Generator, hw=(768, 1024), scale: int = 4,
                  face_range=(20, 120), max_faces: int = 4, kind: str = "mosaic"):
    """One HR scene: ``(hr uint8, faces, patch_mask)``; each face is a dict with ``box``
    (HR px, x0 y0 x1 y1), ``lr_size`` (box side in LR px), ``upscale`` (HR px per source
    px), ``name`` and ``square`` (x0, y0, side in HR px: where the source's centre square,
    its eval crop, lands); ``patch_mask`` is True over every pasted patch."""
    h, w = hw
    hr = background(kind, hw, rng).astype(np.float32)
    mask = np.zeros((h, w), bool)
    faces, taken = [], []
    for _ in range(int(rng.integers(1, max_faces + 1))):
        src = sources[int(rng.integers(len(sources)))]
        lr_size = float(np.exp(rng.uniform(np.log(face_range[0]), np.log(face_range[1]))))
        box = src["box"]
        u = lr_size * scale / max(box[2] - box[0], box[3] - box[1])
        sh, sw = src["rgb"].shape[:2]
        c = int(min(sh, sw, 0.95 * min(h, w) / u))
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0 = int(np.clip(round(cx - c / 2), 0, sw - c))
        y0 = int(np.clip(round(cy - c / 2), 0, sh - c))
        side = int(round(c * u))
        patch = cv2.resize(src["rgb"][y0:y0 + c, x0:x0 + c], (side, side),
                           interpolation=cv2.INTER_AREA if u < 1 else cv2.INTER_CUBIC)
        for _try in range(60):
            px = int(rng.integers(0, w - side + 1))
            py = int(rng.integers(0, h - side + 1))
            if all(px + side + 8 <= a or a2 + 8 <= px or py + side + 8 <= b or b2 + 8 <= py
                   for a, b, a2, b2 in taken):
                break
        else:
            continue
        taken.append((px, py, px + side, py + side))
        alpha = _soft_alpha(side)
        region = hr[py:py + side, px:px + side]
        hr[py:py + side, px:px + side] = region + alpha * (patch.astype(np.float32) - region)
        mask[py:py + side, px:px + side] = True
        f = side / c
        fb = np.array([(box[0] - x0) * f + px, (box[1] - y0) * f + py,
                       (box[2] - x0) * f + px, (box[3] - y0) * f + py])
        q = min(sh, sw)
        square = (((sw - q) // 2 - x0) * f + px, ((sh - q) // 2 - y0) * f + py, q * f)
        faces.append({"box": fb, "lr_size": max(fb[2] - fb[0], fb[3] - fb[1]) / scale,
                      "upscale": f, "name": src["name"], "square": square})
    return np.clip(np.round(hr), 0, 255).astype(np.uint8), faces, mask


def shrink(hr: np.ndarray, k: int) -> np.ndarray:
    """The LR photo: ``hr`` shrunk ``k`` times with ``cv2.INTER_AREA`` (sides divisible by k)."""
    h, w = hr.shape[:2]
    return cv2.resize(hr[: h - h % k, : w - w % k], (w // k, h // k), interpolation=cv2.INTER_AREA)


# ----------------------------------------------------------------------------- running

class Timed:
    """A detector or restorer whose ``detect`` / ``restore_face`` time is summed in
    ``seconds`` and counted in ``calls`` (everything else is passed through). The files of
    a ladder that :meth:`for_face` hands out add to the same totals."""

    def __init__(self, inner, totals: dict | None = None):
        self.inner = inner
        self._totals = totals if totals is not None else {"seconds": 0.0, "calls": 0}

    seconds = property(lambda self: self._totals["seconds"],
                       lambda self, v: self._totals.__setitem__("seconds", v))
    calls = property(lambda self: self._totals["calls"],
                     lambda self, v: self._totals.__setitem__("calls", v))

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _timed(self, fn, *args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self._totals["seconds"] += time.perf_counter() - t
            self._totals["calls"] += 1

    def detect(self, rgb):
        return self._timed(self.inner.detect, rgb)

    def restore_face(self, face, mask=None):
        return self._timed(self.inner.restore_face, face, mask)

    def for_face(self, native):
        """The file that fits a face (a ladder's choice, or this one), timed."""
        inner = self.inner.for_face(native)
        return self if inner is self.inner else Timed(inner, self._totals)


class Shrunk:
    """A x4 restorer used at x2: its output shrunk ÷2 with ``cv2.INTER_AREA``."""

    def __init__(self, inner, scale: int):
        from tfface.restore.model import ModelSpec

        s, k = int(inner.spec.input_size), int(inner.spec.scale)
        if k % scale:
            raise SystemExit(f"error: a x{k} model cannot serve x{scale}")
        self.inner, self.name = inner, f"{inner.name} (x{k} then ÷{k // scale})"
        self.spec = ModelSpec("sr", s, s * scale, scale)

    def for_face(self, native):
        inner = self.inner.for_face(native)
        return self if inner is self.inner else Shrunk(inner, self.spec.scale)

    def restore_face(self, face, mask=None):
        out = self.inner.restore_face(face, mask)
        n = self.spec.output_size
        return cv2.resize(out, (n, n), interpolation=cv2.INTER_AREA)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 100.0 if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def face_scores(hr: np.ndarray, out: np.ndarray, box) -> tuple[float, float, float]:
    """PSNR, SSIM and sharpness of ``out`` against ``hr`` over ``box`` (HR px)."""
    import tensorflow as tf

    from tfface import metrics

    h, w = hr.shape[:2]
    x0, y0 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
    x1, y1 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
    a, b = hr[y0:y1, x0:x1], out[y0:y1, x0:x1]
    ta = tf.constant(a[None].astype(np.float32) / 127.5 - 1.0)
    tb = tf.constant(b[None].astype(np.float32) / 127.5 - 1.0)
    ones = tf.ones_like(ta[..., :1])
    return (psnr(a, b), float(metrics.ssim(ta, tb)[0]),
            float(metrics.hole_sharpness(ta, tb, ones)[0]))


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _panel(img: np.ndarray, box, side: int = 128, lr_k: int = 0) -> np.ndarray:
    """The face's box grown by 15 %, squared, as a ``side`` px panel (``lr_k``: ``img`` is
    the LR photo, shown with nearest-neighbour enlargement)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = 0.575 * max(box[2] - box[0], box[3] - box[1])
    if lr_k:
        cx, cy, half = (cx + 0.5) / lr_k - 0.5, (cy + 0.5) / lr_k - 0.5, half / lr_k
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    n = max(2, int(round(2 * half)))
    pad = cv2.copyMakeBorder(img, n, n, n, n, cv2.BORDER_CONSTANT)
    crop = pad[y0 + n:y0 + 2 * n, x0 + n:x0 + 2 * n]
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_NEAREST if lr_k
                      else cv2.INTER_AREA)


def make_pipelines(paths, detector_name: str, min_face: int, overlap: int | None = None,
                   mirror: bool = False):
    from tfface.faces import make_detector
    from tfface.restore.photo import FacePipeline
    from tfface.restore.sr import NativeSRPipeline

    det = Timed(make_detector(detector_name))
    pipes = {}
    for p in paths:
        pipes[p] = (FacePipeline(det, min_face=min_face) if p == "pipeline"
                    else NativeSRPipeline(det, min_face=min_face, overlap=overlap,
                                          mirror=mirror))
    return det, pipes


def run_scenes(args, restorer, sources):
    """Every scene through bicubic and each path: per-face rows, per-photo rows, panels."""
    from tqdm.auto import tqdm

    from tfface.restore.sr import sr_image

    k = int(restorer.spec.scale)
    det, pipes = make_pipelines(args.paths, args.detector, args.min_face, args.overlap,
                                 args.mirror)
    model = Timed(restorer)
    last = list(pipes)[-1]  # the path whose gain over bicubic orders --grid-order gain
    faces_rows, photo_rows, panels = [], [], []
    for i in tqdm(range(args.scenes), desc="scenes", unit="scene", disable=args.quiet):
        rng = np.random.default_rng([args.seed, i])
        hr, faces, pmask = compose_scene(sources, rng, args.hr_size, k, args.face_range,
                                         args.max_faces, args.background)
        lr = shrink(hr, k)
        hr = hr[: lr.shape[0] * k, : lr.shape[1] * k]
        bg = ~cv2.dilate(pmask[: hr.shape[0], : hr.shape[1]].astype(np.uint8),
                         np.ones((17, 17), np.uint8)).astype(bool)
        t = time.perf_counter()
        outs = {"bicubic": cv2.resize(lr, hr.shape[1::-1], interpolation=cv2.INTER_CUBIC)}
        t_bg = time.perf_counter() - t
        row = {"scene": i, "faces": len(faces)}
        for name, pipe in pipes.items():
            det.seconds = model.seconds = 0.0
            t = time.perf_counter()
            outs[name], rep = pipe.restore(model, lr)
            total = time.perf_counter() - t
            row[name + "_time"] = (det.seconds, model.seconds, t_bg,
                                   max(0.0, total - det.seconds - model.seconds - t_bg), total)
            row[name + "_found"] = [np.asarray(f.box, np.float64) * k for f in rep.faces]
        if args.background_sr:
            model.seconds = 0.0
            outs["model_bg"] = sr_image(model, lr, args.overlap)
            row["model_bg_time"] = model.seconds
        for name, out in outs.items():
            row[name + "_psnr"] = psnr(hr, out)
            row[name + "_bg_psnr"] = psnr(hr[bg], out[bg]) if bg.any() else float("nan")
        photo_rows.append(row)
        for f in faces:
            fr = {"lr_size": f["lr_size"], "upscale": f["upscale"], "name": f["name"]}
            for name, out in outs.items():
                if name != "model_bg":
                    fr[name] = face_scores(hr, out, f["box"])
            for name in pipes:
                fr[name + "_det"] = any(_iou(b, f["box"]) >= 0.3 for b in row[name + "_found"])
            if getattr(args, "identity", None):
                fr["crops"] = {n: cut_square(img, f["square"]) for n, img in
                               [("HR", hr), *((n, o) for n, o in outs.items() if n != "model_bg")]}
            faces_rows.append(fr)
            panels.append((f["lr_size"], [_panel(lr, f["box"], lr_k=k)]
                           + [_panel(outs[n], f["box"]) for n in ["bicubic", *pipes]]
                           + [_panel(hr, f["box"])], fr[last][0] - fr["bicubic"][0]))
    return faces_rows, photo_rows, panels


def _mean(xs):
    xs = [x for x in xs if x == x]
    return float(np.mean(xs)) if xs else float("nan")


def print_tables(faces_rows, photo_rows, methods, k: int, out=sys.stdout) -> None:
    """Per size bin: faces, detection, GT upscale, PSNR / SSIM / sharpness of each method
    and its gain over bicubic; then whole-photo PSNR and time per photo."""
    bins = list(zip(BINS[:-1], BINS[1:])) + [(0, 10 ** 9)]
    head = f"{'LR face px':>10} {'faces':>5} {'GT up':>6} | {'bicubic':>21}"
    for m in methods:
        head += f" | {m + ' (det)':>33}"
    print(head, file=out)
    print(f"{'':>10} {'':>5} {'':>6} | {'PSNR / SSIM / sharp':>21}"
          + "".join(f" | {'PSNR / SSIM / sharp   ΔdB':>33}" for _ in methods), file=out)
    for lo, hi in bins:
        rows = [r for r in faces_rows if lo <= r["lr_size"] < hi]
        if not rows:
            continue
        label = "all" if hi == 10 ** 9 else f"{lo}-{hi - 1}"
        b = [_mean([r["bicubic"][j] for r in rows]) for j in range(3)]
        line = (f"{label:>10} {len(rows):>5} {_mean([r['upscale'] for r in rows]):>5.2f}x |"
                f" {b[0]:6.2f} / {b[1]:.3f} / {b[2]:.3f}")
        for m in methods:
            v = [_mean([r[m][j] for r in rows]) for j in range(3)]
            det = sum(r[m + "_det"] for r in rows)
            line += (f" | {v[0]:6.2f} / {v[1]:.3f} / {v[2]:.3f} {v[0] - b[0]:+6.2f}"
                     f" ({det:>2})")
        print(line, file=out)
    print("", file=out)
    names = ["bicubic", *methods] + (["model_bg"] if "model_bg_psnr" in photo_rows[0] else [])
    print("whole photo PSNR: " + ", ".join(
        f"{n} {_mean([r[n + '_psnr'] for r in photo_rows]):.2f} dB" for n in names), file=out)
    print("non-face part PSNR: " + ", ".join(
        f"{n} {_mean([r[n + '_bg_psnr'] for r in photo_rows]):.2f} dB" for n in names), file=out)
    for m in methods:
        t = np.median(np.array([r[m + "_time"] for r in photo_rows]), axis=0) * 1000
        print(f"time per photo, {m} (median ms): detection {t[0]:.0f}, model on faces "
              f"{t[1]:.0f}, bicubic background {t[2]:.0f}, crops/weights/paste {t[3]:.0f}, "
              f"total {t[4]:.0f}", file=out)
    if "model_bg_time" in photo_rows[0]:
        t = np.median([r["model_bg_time"] for r in photo_rows]) * 1000
        print(f"model over the whole LR photo in tiles: {t:.0f} ms per photo (median)", file=out)


# ----------------------------------------------------------------------------- identity

IDENTITY_CROP = 128
"""Side of the crops the embedder gets: the eval crop of ``pipelines.evaluate
--identity`` (the photo's centre square), whose face box the dlib embedder knows."""


def centre_square(rgb: np.ndarray, size: int = IDENTITY_CROP) -> np.ndarray:
    """A photo's eval crop: its centre square resized to ``size`` (area when shrinking,
    cubic when enlarging), as the folder source cuts eval faces."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return cut_square(rgb, (x0, y0, s), size)


def cut_square(img: np.ndarray, square, size: int = IDENTITY_CROP) -> np.ndarray:
    """The ``size`` px crop of ``img`` over ``square`` = (x0, y0, side) in ``img`` px
    (rounded to whole pixels; outside the image: black), area-shrunk or cubic-enlarged."""
    n = max(1, int(round(square[2])))
    x, y = int(round(square[0])), int(round(square[1]))
    h, w = img.shape[:2]
    pad = max(0, -x, -y, x + n - w, y + n - h)
    if pad:
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT)
        x, y = x + pad, y + pad
    crop = img[y:y + n, x:x + n]
    if n == size:
        return crop.copy()
    return cv2.resize(crop, (size, size),
                      interpolation=cv2.INTER_AREA if n > size else cv2.INTER_CUBIC)


def identity_sources(folder: str, people: dict) -> set[str]:
    """Photos of ``folder`` whose person has another listed photo (a genuine pair)."""
    count: dict[str, int] = {}
    for person in people.values():
        count[person] = count.get(person, 0) + 1
    return {f for f, p in people.items() if count[p] >= 2}


def gallery(folder: str, people: dict, size: int = IDENTITY_CROP):
    """Every listed photo of ``folder`` as its eval crop: ``(names, uint8 [G, S, S, 3])``."""
    from tfface.data.sources.scan import read_photo

    names, crops = [], []
    for name in sorted(people):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            names.append(name)
            crops.append(centre_square(read_photo(path), size))
    return names, np.stack(crops)


def size_bin(lr_size: float) -> str:
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        if lo <= lr_size < hi:
            return f"{lo}-{hi - 1}"
    return f"<{BINS[0]}" if lr_size < BINS[0] else f">={BINS[-1]}"


def identity_report(embedder, faces_rows, methods, gallery_names, gallery_faces, people,
                    target_fpr: float = 0.01) -> dict:
    """Face verification of each scene face's crops (``row["crops"]``: ``HR`` and every
    method) against the gallery (other photos of the folder), by
    :func:`tfface.identity.verify.verification`: thresholds fixed on the HR faces'
    impostor pairs (at ``target_fpr``), TPR/FPR of every variant at them, by size bin
    too, and each method paired with bicubic (``paired``: the genuine pairs only one of
    the two accepts). A probe is never paired with its own source photo."""
    from tfface.identity.verify import verification

    probes = [r for r in faces_rows if r["name"] in people]
    names = ["HR", "bicubic", *methods]
    embedded = {n: embedder.embed(np.stack([r["crops"][n] for r in probes])) for n in names}
    out = verification(embedded, [people[r["name"]] for r in probes],
                       embedder.embed(gallery_faces), [people[g] for g in gallery_names],
                       probe_files=[r["name"] for r in probes], gallery_files=list(gallery_names),
                       similarity=embedder.similarity, target_fpr=target_fpr, reference="HR",
                       groups=[size_bin(r["lr_size"]) for r in probes], baseline="bicubic")
    out["embedder"] = embedder.name
    return out


def print_identity(report: dict, out=sys.stdout) -> None:
    v = report["variants"]
    print(f"\nidentity ({report['embedder']}): {report['probes']} scene faces against "
          f"{report['gallery']} photos of the folder ({report['genuine_pairs']} genuine, "
          f"{report['impostor_pairs']} impostor pairs; own photo never paired); TPR at the "
          f"threshold that accepts {report['target_fpr']:.0%} of the HR faces' impostor pairs",
          file=out)
    print("  " + ", ".join(f"{n} TPR {r['tpr']:.3f} (FPR {r['fpr']:.3f})" for n, r in v.items()),
          file=out)
    print(f"  TPR at each one's own {report['target_fpr']:.0%} FPR (threshold on its own "
          "impostor pairs): " + ", ".join(f"{n} {r['tpr_own']:.3f}" for n, r in v.items()),
          file=out)
    for label, rows in report.get("by_group", {}).items():
        pairs = rows["HR"]["genuine_pairs"]
        print(f"  {label:>8} px ({pairs:>3} genuine pairs): " + ", ".join(
            f"{n} {r['tpr']:.3f} (own {r['tpr_own']:.3f})" for n, r in rows.items()
            if r["tpr"] is not None), file=out)
    for name, p in report.get("paired", {}).items():
        print(f"  {name} against {p['baseline']}, pair by pair at their own thresholds: "
              f"{p['only_variant']} genuine pairs accepted only by {name}, "
              f"{p['only_baseline']} only by {p['baseline']} (exact McNemar p = "
              f"{p['p_value']:.2g})", file=out)


def write_grid(path: str, panels, methods, count: int = GRID_ROWS, order: str = "size") -> list:
    """Columns LR | bicubic | each method | HR for ``count`` faces spread evenly over the
    faces sorted by LR size (``order="size"``) or by the last method's face-box PSNR gain
    over bicubic (``"gain"``: the worst first, the median in the middle, the best last);
    each row is labelled with its size and gain. Returns the picked (size, gain) pairs."""
    from tfface.imageio import write_image

    # a face whose gain is not a number (an empty box) sorts last, not at random
    panels = sorted(panels, key=lambda p: p[0] if order == "size"
                    else (p[2] if np.isfinite(p[2]) else np.inf))
    pick = [panels[int(round(i))] for i in np.linspace(0, len(panels) - 1, min(count, len(panels)))]
    rows = []
    for size, cells, gain in pick:
        row = np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255)
                              for c in cells], 1)
        cv2.putText(row, f"{size:.0f}px {gain:+.2f}dB", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 0), 1, cv2.LINE_AA)
        rows.append(row)
    write_image(path, np.concatenate(rows, 0))
    print(f"grid: {path} (columns: LR, bicubic, {', '.join(methods)}, HR; rows by "
          + ("LR face size" if order == "size" else f"{methods[-1]}'s gain over bicubic, "
             "worst first") + ")")
    return [(size, gain) for size, _, gain in pick]


def time_photo(args, restorer, sources, out=sys.stdout) -> None:
    """A ``--hr-size`` photo with one ``--time-face`` px face as the LR input: time per
    part of each path (median of ``--repeats``), and the model over the whole photo."""
    from tfface.restore.sr import count_tiles, sr_image

    k = int(restorer.spec.scale)
    rng = np.random.default_rng([args.seed, 10 ** 6])
    photo, faces, _ = compose_scene(sources, rng, args.hr_size, 1,
                                    (args.time_face, args.time_face + 1e-3), 1, args.background)
    h, w = photo.shape[:2]
    print(f"\ntiming: a {w}x{h} photo with one face of {faces[0]['lr_size']:.0f} px -> "
          f"{w * k}x{h * k}, {args.repeats} runs, median ms", file=out)
    det, pipes = make_pipelines(args.paths, args.detector, args.min_face, args.overlap,
                                 args.mirror)
    model = Timed(restorer)
    for name, pipe in pipes.items():
        runs = []
        for _ in range(args.repeats):
            det.seconds = model.seconds = 0.0
            t = time.perf_counter()
            cv2.resize(photo, (w * k, h * k), interpolation=cv2.INTER_CUBIC)
            t_bg = time.perf_counter() - t
            t = time.perf_counter()
            _, rep = pipe.restore(model, photo)
            total = time.perf_counter() - t
            runs.append((det.seconds, model.seconds, t_bg,
                         total - det.seconds - model.seconds - t_bg, total, model.calls))
            model.calls = 0
        m = np.median(np.array(runs), axis=0)
        print(f"  {name}: detection {m[0] * 1000:.0f}, model on the face {m[1] * 1000:.0f} "
              f"({m[5]:.0f} calls), bicubic background {m[2] * 1000:.0f}, crops/weights/paste "
              f"{m[3] * 1000:.0f}, total {m[4] * 1000:.0f} ({rep.summary()})", file=out)
    side = int(restorer.spec.input_size)
    t = time.perf_counter()
    sr_image(restorer, photo, args.overlap)
    t = time.perf_counter() - t
    print(f"  model over the whole photo in tiles ({count_tiles(h, w, side, args.overlap)} "
          f"tiles of {side} "
          f"px): {t * 1000:.0f} ms (one run)", file=out)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 1024x768, got '{text}'")
    if w < 64 or h < 64:
        raise argparse.ArgumentTypeError("the scene must be at least 64x64")
    return h, w


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.photo_sr",
                                description=__doc__.splitlines()[0])
    p.add_argument("--model", nargs="+", default=None, metavar="FILE",
                   help="SR .tflite file or run directory; several files of one scale at "
                   "different input sizes are a ladder that sends each face to the smallest "
                   "file whose input covers it (default: the shipped x4 realism file; with --scale "
                   "2 the x2 file)")
    p.add_argument("--faces", default="/work/shared/data/faces-hq/dev", metavar="DIR",
                   help="folder of face photos (default: faces-hq dev)")
    p.add_argument("--sources", type=int, default=120, help="faces read from --faces")
    p.add_argument("--scenes", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hr-size", type=_size, default=(768, 1024), metavar="WxH",
                   help="HR scene size (default 1024x768)")
    p.add_argument("--scale", type=int, choices=(2, 4), default=None,
                   help="default: the model's; 2 with a x4 model shrinks its output")
    p.add_argument("--face-range", type=float, nargs=2, default=(20.0, 120.0), metavar=("LO", "HI"),
                   help="LR face sizes (box side, px), drawn log-uniformly")
    p.add_argument("--max-faces", type=int, default=4)
    p.add_argument("--background", choices=("mosaic", "flat"), default="mosaic")
    p.add_argument("--paths", nargs="+", choices=("pipeline", "native"), default=["pipeline"])
    p.add_argument("--detector", default="auto")
    p.add_argument("--min-face", type=int, default=16)
    p.add_argument("--mirror", action="store_true",
                   help="native path: also run each face tile mirrored and average the two "
                   "outputs (tfface-restore --sr-mirror)")
    p.add_argument("--overlap", type=int, default=None, metavar="PX",
                   help="tile overlap (LR px) of the native path and --background-sr "
                   "(default: a quarter of the model's input; the pipeline path's is fixed)")
    p.add_argument("--background-sr", action="store_true",
                   help="also run the model over the whole LR photo and score its non-face part")
    p.add_argument("--time-photo", action="store_true",
                   help="also time a --hr-size photo with one face as the LR input")
    p.add_argument("--time-face", type=float, default=200.0,
                   help="face size of --time-photo (px in that photo)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--identity", choices=("dlib",), default=None,
                   help="also face verification of the upscaled faces (TPR at 1%% FPR; --faces "
                   "must list its photos' people in IDENTITIES.csv, e.g. faces-dev)")
    p.add_argument("--identities", metavar="CSV",
                   help="with --identity: the file,person table (default: IDENTITIES.csv in "
                   "--faces)")
    p.add_argument("--grid", metavar="FILE", help="before/after grid (holds dataset faces: "
                   "write it under /work/scratch)")
    p.add_argument("--grid-order", choices=("size", "gain"), default="size",
                   help="rows of --grid: faces spread over the LR sizes (default), or over "
                        "the face-box PSNR gain of the last path over bicubic, worst first, "
                        "median in the middle, best last")
    p.add_argument("--grid-rows", type=int, default=GRID_ROWS, metavar="N",
                   help=f"faces in --grid (default {GRID_ROWS})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.mirror and "native" not in args.paths:
        parser.error("--mirror applies to the native path: add --paths native")
    if not args.grid and (args.grid_order != "size" or args.grid_rows != GRID_ROWS):
        parser.error("--grid-order and --grid-rows shape the grid: add --grid FILE")
    if args.scenes < 0 or (args.scenes == 0 and (not args.time_photo or args.identity
                                                 or args.grid)):
        print("error: --scenes must be 1 or more (0 only with --time-photo alone: the "
              "timing and no scores)", file=sys.stderr)
        return 2
    if args.repeats < 1:
        print(f"error: --repeats must be 1 or more, got {args.repeats}", file=sys.stderr)
        return 2
    if args.grid_rows < 1:
        print(f"error: --grid-rows must be 1 or more, got {args.grid_rows}", file=sys.stderr)
        return 2
    from tfface.faces import make_detector
    from tfface.restore.model import Restorer
    from tfface.shipped import sr_model

    try:
        restorer = Restorer.load_many(args.model or [sr_model(args.scale or 4)])
    except (ValueError, OSError) as e:  # InferenceError, a run folder it cannot use
        print(f"error: {e}", file=sys.stderr)
        return 2
    if restorer.spec.task != "sr":
        print(f"error: {restorer.name} is not a super-resolution model", file=sys.stderr)
        return 2
    if args.scale and args.scale != restorer.spec.scale:
        restorer = Shrunk(restorer, args.scale)
    if not os.path.isdir(args.faces):
        print(f"error: no such folder: {args.faces}", file=sys.stderr)
        return 2
    people = embedder = None
    if args.identity:
        from tfface.identity.verify import IDENTITIES_FILE, IdentityError, load_embedder
        from tfface.identity.verify import read_identities

        try:
            people = read_identities(args.identities
                                     or os.path.join(args.faces, IDENTITIES_FILE))
            embedder = load_embedder(args.identity)
        except IdentityError as e:
            print(f"error: --identity: {e}", file=sys.stderr)
            return 2
    sources = load_sources(args.faces, args.sources, make_detector("mtcnn"),
                           keep=identity_sources(args.faces, people) if people else None)
    if not sources:
        print(f"error: no usable face in {args.faces}", file=sys.stderr)
        return 2
    k = int(restorer.spec.scale)
    print(f"model {restorer.name}: x{k}, input {restorer.spec.input_size} px; {len(sources)} "
          f"faces of {args.faces}; {args.scenes} scenes {args.hr_size[1]}x{args.hr_size[0]} "
          f"({args.background} background), LR faces {args.face_range[0]:.0f}-"
          f"{args.face_range[1]:.0f} px, seed {args.seed}"
          + ("; native path mirrored and averaged" if args.mirror else ""))
    faces_rows, photo_rows, panels = run_scenes(args, restorer, sources)
    if photo_rows:  # --scenes 0: only the --time-photo timing
        print_tables(faces_rows, photo_rows, args.paths, k)
    if people:
        names, faces = gallery(args.faces, people)
        print_identity(identity_report(embedder, faces_rows, args.paths, names, faces, people))
    if args.grid:
        write_grid(args.grid, panels, args.paths, args.grid_rows, args.grid_order)
    if args.time_photo:
        time_photo(args, restorer, sources)
    return 0


if __name__ == "__main__":
    sys.exit(main())
