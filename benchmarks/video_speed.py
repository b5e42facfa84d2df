"""Video restoring end to end: frames per second and temporal flicker on a 720p clip.

    PYTHONPATH=$PWD python benchmarks/video_speed.py --frames 100 --faces 1 3

The clip is composed from ``skimage.data.astronaut()`` (public domain) wearing a
synthesized surgical mask (the project's occlusion synthesis, ``facemask``): one head
(or three of different sizes) still on a soft background, seen by a hand-held camera:
every frame is the scene shifted by a small random sub-pixel shake (an AR(1) walk,
about 0.4 px a frame) plus sensor noise (sigma 2 levels), so the input itself changes
from frame to frame as a real still shot does. The clip is written as H.264 at 25 fps
(CRF 18, preset medium: CABAC and B-frames, as a camera or phone would write it; about
1.5 Mbit/s for this still scene) and restored as ``tfface-restore`` does (decoding read
ahead in a thread, the face pipeline in video mode, H.264 encoding in ffmpeg beside
it), with the shipped V-Net and segmenter and the default detector unless told
otherwise.

Printed per clip:

* **frames per second** end to end (file in → file out) and the time per frame of
  each part (full detections, tracking search, segmentation, model, paste-back);
* **flicker**: the mean absolute frame-to-frame change (levels) inside the mask (the
  restored region; where the true mask covers both frames, eroded by 3 px) of the
  output, next to the same measure on the input and on the clean clip (the same
  frames without the mask), for the video path and, for comparison, for the photo
  path run on every frame and for tracking without the temporal fill.

The machine's load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from fractions import Fraction

import cv2
import numpy as np

import tfface  # noqa: F401
from benchmarks.restore_photo import Timed, astronaut, occluded_astronaut

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
W, H, MARGIN = 1280, 720, 16
# (centre x, centre y, eye distance px, degrees) in the 720p frame
PLACEMENTS = {
    1: [(640, 380, 96, 4)],
    3: [(330, 360, 84, 6), (760, 330, 64, -8), (1060, 440, 48, 3)],
}


def compose_world(n_faces: int, seed: int = 0):
    """The still scene (occluded, clean, mask), a margin larger than 720p for the shake."""
    occluded, mask, lm = occluded_astronaut("facemask")
    clean = astronaut()[0]
    h, w = H + 2 * MARGIN, W + 2 * MARGIN
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([90 + 60 * xx / w, 110 + 40 * yy / h, 140 + 30 * np.sin(xx / 90.0)], -1)
    base = cv2.GaussianBlur(base + rng.normal(0, 6, base.shape), (0, 0), 2)
    c = lm[:2].mean(0)
    d = float(np.linalg.norm(lm[1] - lm[0]))
    half = int(2.6 * d)
    x0, y0 = int(c[0]) - half, int(c[1]) - half
    cut = (slice(max(y0, 0), y0 + 2 * half), slice(max(x0, 0), x0 + 2 * half))
    heads = [occluded[cut], clean[cut], mask[cut]]
    hh, hw = heads[0].shape[:2]
    alpha = np.zeros((hh, hw), np.float32)
    cv2.ellipse(alpha, (hw // 2, hh // 2), (int(hw * 0.42), int(hh * 0.48)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (31, 31), 0)
    occ_w, clean_w = base.copy(), base.copy()
    mask_w = np.zeros((h, w), np.float32)
    for cx, cy, eye_px, deg in PLACEMENTS[n_faces]:
        m = cv2.getRotationMatrix2D((hw / 2, hh / 2), deg, eye_px / d)
        m[:, 2] += np.array([cx + MARGIN, cy + MARGIN], np.float64) - [hw / 2, hh / 2]
        warp = lambda img: cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_AREA)  # noqa: E731
        a = warp(alpha)
        occ_w = occ_w * (1 - a[..., None]) + warp(heads[0]).astype(np.float32) * a[..., None]
        clean_w = clean_w * (1 - a[..., None]) + warp(heads[1]).astype(np.float32) * a[..., None]
        mask_w = np.maximum(mask_w, warp(heads[2]) * a)
    return occ_w.astype(np.float32), clean_w.astype(np.float32), mask_w


def shaky_clip(world, frames: int, seed: int = 1, shake: float = 0.4, noise: float = 2.0):
    """Input frames, clean frames and masks (bool) seen by a shaking camera."""
    occ_w, clean_w, mask_w = world
    rng = np.random.default_rng(seed)
    off = np.zeros(2)
    ins, cleans, masks = [], [], []
    for _ in range(frames):
        off = 0.7 * off + rng.normal(0, shake, 2)
        m = np.float32([[1, 0, -MARGIN + off[0]], [0, 1, -MARGIN + off[1]]])
        n = rng.normal(0, noise, (H, W, 3)).astype(np.float32)
        for src, dst in ((occ_w, ins), (clean_w, cleans)):
            f = cv2.warpAffine(src, m, (W, H), flags=cv2.INTER_LINEAR) + n
            dst.append(np.clip(np.round(f), 0, 255).astype(np.uint8))
        masks.append(cv2.warpAffine(mask_w, m, (W, H), flags=cv2.INTER_LINEAR) > 0.5)
    return ins, cleans, masks


def flicker(frames, masks, erode: int = 3) -> float:
    """Mean absolute frame-to-frame change (levels) inside the masks (both frames)."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1))
    vals = []
    for t in range(1, len(frames)):
        r = cv2.erode((masks[t] & masks[t - 1]).astype(np.uint8), k) > 0
        if r.any():
            d = np.abs(frames[t].astype(np.float32) - frames[t - 1].astype(np.float32))
            vals.append(float(d[r].mean()))
    return float(np.mean(vals)) if vals else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--faces", type=int, nargs="+", default=[1, 3], choices=sorted(PLACEMENTS))
    p.add_argument("--model", default=os.path.join(ROOT, "android_demo_assets", "vnet",
                                                   "model_int8_mixed.tflite"),
                   help="default: the shipped 128 px V-Net, tfface-restore's file for videos "
                   "(--look fidelity, its video default)")
    p.add_argument("--segmenter", default=os.path.join(ROOT, "android_demo_assets", "segmenter",
                                                       "segmenter_int8.tflite"))
    p.add_argument("--detector", default=None, help="default: the restore command's default")
    p.add_argument("--detect-every", type=int, default=5)
    p.add_argument("--no-flicker", action="store_true", help="speed only")
    p.add_argument("--noise", type=float, default=2.0, help="sensor noise sigma (levels)")
    p.add_argument("--shake", type=float, default=0.4, help="camera shake (px a frame)")
    p.add_argument("--keep", metavar="DIR", help="keep the input and output clips here")
    args = p.parse_args(argv)

    from tfface.faces import make_detector
    from tfface.restore.photo import FacePipeline
    from tfface.restore import photo as fpl
    from tfface.faces.detect import DEFAULT_DETECTOR
    from tfface.segmenter.infer import OccluderSegmenter
    from tfface.restore.model import Restorer
    from tfface.restore.video import open_writer, probe, restore_video

    detector_name = args.detector or DEFAULT_DETECTOR
    restorer = Restorer.load(args.model)
    seg = OccluderSegmenter(args.segmenter)
    det = make_detector(detector_name)
    timer = Timed()
    det.detect = timer.wrap("full detection", det.detect)
    restorer.restore_face = timer.wrap("model", restorer.restore_face)
    seg.probability = timer.wrap("segmentation", seg.probability)
    orig_paste = fpl.al.paste_back
    fpl.al.paste_back = timer.wrap("paste-back", orig_paste)
    pipe = FacePipeline(det, seg)
    work = args.keep or tempfile.mkdtemp(prefix="tfface-video-")
    os.makedirs(work, exist_ok=True)
    print(f"model {os.path.relpath(args.model, ROOT)}, detector {detector_name}, detect every "
          f"{args.detect_every} frames, {W}x{H}, {args.frames} frames at 25 fps, noise "
          f"{args.noise:g}, shake {args.shake:g} px; "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    for n_faces in args.faces:
        clip = shaky_clip(compose_world(n_faces), args.frames, shake=args.shake,
                          noise=args.noise)
        src = os.path.join(work, f"astronaut_{n_faces}face.mp4")
        w = open_writer(src, (W, H), Fraction(25), crf=18, preset="medium")  # as a camera
        for f in clip[0]:
            w.write(f)
        w.close()
        dst = os.path.join(work, f"astronaut_{n_faces}face_restored.mp4")
        pipe.start_video(25.0, detect_every=args.detect_every)
        tracker = pipe.tracker
        tracker.search = timer.wrap("tracking search", tracker.search)
        timer.t = {}
        load0 = os.getloadavg()[0]
        self0, kids0 = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
        t0 = time.perf_counter()
        n = restore_video(src, dst, lambda rgb: pipe.restore(restorer, rgb)[0], quiet=True)
        wall = time.perf_counter() - t0
        self1, kids1 = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
        pipe.end_video()
        info = probe(dst)

        def cpu(a, b):  # ms of CPU a frame
            return 1e3 * (b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime) / n

        parts = ", ".join(f"{k} {v / n:.1f}" for k, v in timer.t.items())
        mbit = os.path.getsize(src) * 8 / 1e6 / (n / 25.0)
        print(f"{n_faces} face(s): {n} frames in {wall:.1f} s = {n / wall:.1f} frames/s end to "
              f"end (input {mbit:.1f} Mbit/s; output {info.video_codec}, "
              f"{float(info.fps):g} fps); load {load0:.1f} → {os.getloadavg()[0]:.1f}")
        print(f"  {tracker.full_detections} full detections; wall ms a frame: {parts}; CPU ms "
              f"a frame: {cpu(self0, self1):.1f} in this process (all threads: decoding, "
              f"model, ...), {cpu(kids0, kids1):.1f} in ffmpeg (encoding)")
        if args.no_flicker:
            continue
        ins, cleans, masks = clip
        f_in, f_clean = flicker(ins, masks), flicker(cleans, masks)
        rows = []
        for name, mode in (("video path (tracking + temporal fill)", "video"),
                           ("tracking, no temporal fill", "no-fill"),
                           ("photo path on every frame", "photo")):
            if mode == "photo":
                pipe.end_video()
            else:
                pipe.start_video(25.0, detect_every=args.detect_every,
                                 temporal_fill=mode == "video")
            outs = [pipe.restore(restorer, f)[0] for f in ins]
            pipe.end_video()
            rows.append((name, flicker(outs, masks)))
            if mode == "video" and args.keep:
                cv2.imwrite(os.path.join(work, f"frame_{n_faces}face.png"),
                            cv2.cvtColor(np.concatenate([ins[-1], outs[-1]], 1),
                                         cv2.COLOR_RGB2BGR))
        print(f"  flicker inside the mask (levels): input {f_in:.2f}, clean clip {f_clean:.2f}")
        for name, v in rows:
            print(f"    {name:40s} {v:5.2f}  = {v / f_in:.2f} x input, {v / f_clean:.2f} x clean")
    fpl.al.paste_back = orig_paste
    return 0


if __name__ == "__main__":
    sys.exit(main())
