"""Frame-to-frame jitter of the aligned face box, with and without landmark smoothing.

    PYTHONPATH=$PWD python benchmarks/video_jitter.py --frames 60

A synthetic clip: the astronaut's head (``skimage.data.astronaut()``, public domain)
moves steadily across a 480x360 canvas (translation, slow zoom and a turning tilt),
with a little sensor noise per frame, so its true landmarks are known in every frame.
For each setting it prints the jitter (mean norm of the second difference of the
aligned 128 px crop's corners in the photo, px; steady motion gives 0) and the mean
error of the crop's corners against the crop of the true landmarks (px; lag shows here),
also for the tracker video restoring uses (BlazeFace on a search window between
detections), with and without its smoothing.
"""

from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np

import tfface  # noqa: F401


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--detector", default="mtcnn")
    args = p.parse_args(argv)

    from skimage import data

    from tfface.faces import align as al
    from tfface.faces import make_detector
    from tfface.faces.track import FaceTracker, LandmarkSmoother, box_jitter

    rgb = data.astronaut()
    det = make_detector(args.detector)
    lm0 = det.detect(rgb)[0].landmarks.astype(np.float64)
    c = lm0[:2].mean(0)
    d = np.linalg.norm(lm0[1] - lm0[0])
    half = int(2.6 * d)
    x0, y0 = max(int(c[0]) - half, 0), max(int(c[1]) - half, 0)
    head = rgb[y0:y0 + 2 * half, x0:x0 + 2 * half]
    lm_h = lm0 - [x0, y0]
    rng = np.random.default_rng(0)
    frames, truth = [], []
    for i in range(args.frames):
        t = i / max(args.frames - 1, 1)
        s = 0.5 + 0.15 * t
        hc = (head.shape[1] / 2, head.shape[0] / 2)
        m = cv2.getRotationMatrix2D(hc, -8 + 16 * t, s)
        m[:, 2] += np.array([140 + 200 * t, 180 - 30 * t]) - hc
        f = np.full((360, 480, 3), 120, np.uint8)
        cv2.warpAffine(head, m, (480, 360), dst=f, flags=cv2.INTER_AREA,
                       borderMode=cv2.BORDER_TRANSPARENT)
        f = np.clip(f + rng.normal(0, 3, f.shape), 0, 255).astype(np.uint8)
        frames.append(f)
        truth.append(al.transform_points(m, lm_h))
    raw = [det.detect(f)[0] for f in frames]
    true_m = [(al.alignment_matrix(t, 128), 128) for t in truth]

    def corners(ms):
        return np.array([al.transform_points(al.invert(m), [[0, 0], [s, 0], [0, s], [s, s]])
                         for m, s in ms])

    print(f"{args.frames} frames, detector {args.detector}; aligned 128 px crop corners (px)")
    print(f"  {'setting':28s} {'jitter':>8s} {'error vs truth':>15s}")
    print(f"  {'true landmarks':28s} {box_jitter(true_m):8.2f} {0.0:15.2f}")
    settings = [("raw detections", None)] + [
        (f"One Euro min_cutoff {mc:g} beta {b:g}", (mc, b)) for mc, b in
        ((1.0, 0.5), (1.0, 2.0), (1.0, 5.0), (2.0, 5.0))]
    for name, opt in settings:
        if opt is None:
            faces = raw
        else:
            sm = LandmarkSmoother(25.0, min_cutoff=opt[0], beta=opt[1])
            faces = [sm([f])[0] for f in raw]
        ms = [(al.alignment_matrix(f.landmarks, 128), 128) for f in faces]
        err = np.linalg.norm(corners(ms) - corners(true_m), axis=-1).mean()
        print(f"  {name:28s} {box_jitter(ms):8.2f} {err:15.2f}")
    # What video restoring uses: the detector every k frames, BlazeFace on a search
    # window in between (tfface.faces.track.FaceTracker), One Euro 1 Hz / beta 2.
    for every in (1, 5):
        for smoothed in (False, True):
            tracker = FaceTracker(det, every=every, fps=25.0)
            faces = []
            for f in frames:
                t = tracker(f)[0]
                faces.append(t.face if smoothed else t.raw)
            ms = [(al.alignment_matrix(f.landmarks, 128), 128) for f in faces]
            err = np.linalg.norm(corners(ms) - corners(true_m), axis=-1).mean()
            name = f"tracker, detect every {every}" + (", One Euro" if smoothed else "")
            print(f"  {name:28s} {box_jitter(ms):8.2f} {err:15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
