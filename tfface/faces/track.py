"""Faces across video frames: tracking between detections and landmark smoothing.

:class:`FaceTracker` runs the full face detector every few frames and follows each face
in the frames between with one cheap BlazeFace run on a crop around it (see its
docstring); video restoring (:meth:`tfface.restore.photo.FacePipeline.start_video`) uses it.

A detector's landmarks move by a pixel or two between frames even when the face is
still; the aligned crop, and so the restored face pasted back, shakes with them.
:class:`LandmarkSmoother` keeps one track per face (matched to the previous frame's
faces by the distance of their eye midpoints, in eye distances) and filters each
track's landmarks with the One Euro filter (Casiez et al., CHI 2012): a low-pass whose
cut-off frequency rises with the speed of the motion, so a still face is steady and a
moving face is followed without lag. Coordinates are filtered in units of the face's
eye distance, so the settings hold for small and large faces alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from tfface.faces.detect import Face


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class _OneEuro:
    """The One Euro filter of one face's landmarks, in units of its eye distance."""

    def __init__(self, dt: float, min_cutoff: float, beta: float, d_cutoff: float):
        self.dt, self.min_cutoff, self.beta, self.d_cutoff = dt, min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    def __call__(self, lm: np.ndarray) -> np.ndarray:
        lm = np.asarray(lm, np.float64)
        if self.x is None:
            self.x, self.dx = lm.copy(), np.zeros_like(lm)
            return self.x
        d = max(float(np.linalg.norm(lm[1] - lm[0])), 1.0)
        dx = (lm - self.x) / self.dt
        a_d = _alpha(self.d_cutoff, self.dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        speed = float(np.linalg.norm(self.dx, axis=1).mean()) / d  # eye distances / s
        a = _alpha(self.min_cutoff + self.beta * speed, self.dt)
        self.x = a * lm + (1 - a) * self.x
        return self.x


@dataclass
class _Track:
    filt: _OneEuro
    seen: int

    @property
    def x(self) -> np.ndarray:
        return self.filt.x


class LandmarkSmoother:
    """Smooths the landmarks of the faces of consecutive frames.

    Args:
        fps: frame rate of the video.
        min_cutoff: cut-off (Hz) of a still face; lower is steadier.
        beta: how fast the cut-off rises with speed (per eye distance per second).
            The defaults (1 Hz, 2) cut the jitter of the aligned box on the synthetic
            clip of ``benchmarks/video_jitter.py`` from 1.62 to 1.01 px for 0.3 px more
            lag error (1.51 → 1.80 px); ``beta=0.5`` gives 0.66 px but 3.3 px of lag.
        match: largest eye-midpoint distance (eye distances) between a face and a track.
    """

    def __init__(self, fps: float = 25.0, min_cutoff: float = 1.0, beta: float = 2.0,
                 d_cutoff: float = 1.0, match: float = 0.6, max_missing: int = 5):
        self.dt = 1.0 / float(fps or 25.0)
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.match, self.max_missing = float(match), int(max_missing)
        self.tracks: list[_Track] = []
        self.frame = 0

    def reset(self) -> None:
        self.tracks = []
        self.frame = 0

    def __call__(self, faces: list[Face]) -> list[Face]:
        self.frame += 1
        out, used = [], set()
        for f in faces:
            lm = np.asarray(f.landmarks, np.float64)
            best = _match(lm, [t.x for t in self.tracks], used, self.match)
            if best is None:
                filt = _OneEuro(self.dt, self.min_cutoff, self.beta, self.d_cutoff)
                filt(lm)
                self.tracks.append(_Track(filt, self.frame))
                used.add(len(self.tracks) - 1)
                out.append(f)
                continue
            t = self.tracks[best]
            used.add(best)
            t.seen = self.frame
            out.append(replace(f, landmarks=t.filt(lm).astype(np.float32)))
        self.tracks = [t for t in self.tracks if self.frame - t.seen <= self.max_missing]
        return out


def _match(lm: np.ndarray, others, used, limit: float) -> int | None:
    """Index of the landmark set in ``others`` (not in ``used``) whose eye midpoint is
    nearest to ``lm``'s, if nearer than ``limit`` eye distances of ``lm``."""
    d = max(float(np.linalg.norm(lm[1] - lm[0])), 1.0)
    c = lm[:2].mean(0)
    best, best_dist = None, limit
    for i, x in enumerate(others):
        if i in used:
            continue
        dist = float(np.linalg.norm(np.asarray(x)[:2].mean(0) - c)) / d
        if dist < best_dist:
            best, best_dist = i, dist
    return best


# --------------------------------------------------------------------------- tracking

@dataclass
class Track:
    """One face followed across the frames of a video."""

    id: int
    face: Face
    """This frame's face, landmarks smoothed (what the frame is restored with)."""
    raw: Face
    """This frame's face as found (the crop search starts from its box)."""
    filt: _OneEuro
    missed: int = 0
    """Consecutive frames in which the face was not found (it is held in place)."""
    state: dict = field(default_factory=dict)
    """Per-face data of whoever restores the frames (temporal smoothing of the fill)."""
    window: tuple[int, int, int] | None = None
    """The square last searched (x0, y0, side), kept while the face stays in it."""


class FaceTracker:
    """Finds and follows the faces of a video: the full detector every ``every`` frames,
    a cheap search around each known face in the frames between.

    In every frame each track is looked for in a square around its last box
    (``crop_scale`` times its side), shrunk to 128 x 128 and searched by BlazeFace
    short range (one run of its 128 px network, about a millisecond); the landmarks of a
    track always come from this search, so they do not jump between two detectors'
    conventions on detection frames. The full ``detector`` runs on frames ``0, every,
    2·every, ...`` to find faces that entered the picture (so a new face is restored
    from at most ``every - 1`` frames after it appears), and at once in any frame in
    which a track was lost (the search found nothing); a face neither finds is held at
    its last place for up to ``max_missing`` frames, then dropped. Landmarks are then
    smoothed per track (One Euro, as :class:`LandmarkSmoother`).

    Args:
        detector: the full detector (``detect(rgb) -> list[Face]``).
        every: frames between full detections (1: every frame, no search needed).
        fps: the video's frame rate (for the smoothing).
        follower: the detector run on the crops (default: BlazeFace short range, the
            detector's own file when it is one); ``None`` found → full detection in
            every frame.
        max_faces: at most this many tracks (largest faces first).
        crop_scale: side of the search window, in box sides.
        recentre: the window moves when the face's centre is this far (window sides)
            from its centre; 0.03-0.2 and a crop scale of 1.6 changed the landmark
            jitter on ``benchmarks/video_jitter.py``'s moving face by at most 15 %.
    """

    SIDE = 128

    def __init__(self, detector, *, every: int = 5, fps: float = 25.0, follower=None,
                 max_faces: int = 32, crop_scale: float = 2.0, max_missing: int = 3,
                 min_cutoff: float = 1.0, beta: float = 2.0, d_cutoff: float = 1.0,
                 match: float = 0.6, recentre: float = 0.1):
        self.detector = detector
        self.every = max(1, int(every))
        self.dt = 1.0 / float(fps or 25.0)
        self.max_faces, self.crop_scale = int(max_faces), float(crop_scale)
        self.max_missing, self.match = int(max_missing), float(match)
        self.recentre = float(recentre)
        self._euro = (float(min_cutoff), float(beta), float(d_cutoff))
        self.follower = follower if follower is not None else _default_follower(detector)
        self.tracks: list[Track] = []
        self.frame = -1
        self._next_id = 0
        self.full_detections = 0

    def __call__(self, rgb: np.ndarray) -> list[Track]:
        self.frame += 1
        lost = False
        for t in self.tracks:
            win = self.window(t.raw, t.window)
            f = self.search(rgb, t.raw, win)
            if f is None:
                t.missed += 1
                lost = True
            else:
                t.raw, t.missed, t.window = f, 0, win
        if self.follower is None or lost or self.frame % self.every == 0:
            self._detect(rgb)
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missing]
        self._dedupe()
        for t in self.tracks:
            if t.missed == 0:
                t.face = replace(t.raw, landmarks=t.filt(t.raw.landmarks).astype(np.float32))
        self.tracks.sort(key=lambda t: -t.face.size)
        del self.tracks[self.max_faces:]
        return list(self.tracks)

    def _detect(self, rgb: np.ndarray) -> None:
        self.full_detections += 1
        faces = sorted(self.detector.detect(rgb), key=lambda f: -f.size)[: self.max_faces]
        used: set[int] = set()
        for f in faces:
            i = _match(np.asarray(f.landmarks, np.float64),
                       [t.raw.landmarks for t in self.tracks], used, self.match)
            if i is not None:
                used.add(i)
                t = self.tracks[i]
                if t.missed:  # lost by the search: start it again from this detection
                    t.raw, t.missed, t.window = self.search(rgb, f) or f, 0, None
                continue
            start = self.search(rgb, f) or f if self.follower is not None else f
            filt = _OneEuro(self.dt, *self._euro)
            self.tracks.append(Track(self._next_id, start, start, filt))
            used.add(len(self.tracks) - 1)
            self._next_id += 1

    def _dedupe(self) -> None:
        """Two tracks on one face (both searches found the same face): the older stays."""
        keep: list[Track] = []
        for t in sorted(self.tracks, key=lambda t: t.id):
            if _match(np.asarray(t.raw.landmarks, np.float64), [k.raw.landmarks for k in keep],
                      set(), 0.3) is None:
                keep.append(t)
        self.tracks = keep

    def window(self, face: Face, previous: tuple[int, int, int] | None = None
               ) -> tuple[int, int, int]:
        """The square ``(x0, y0, side)`` (photo px) searched for ``face`` in the next
        frame: ``crop_scale`` times its box, centred on it. The ``previous`` window is
        kept while the face stays near its centre (within a tenth of its side) at about
        its size (within 20 %), so a still face is searched in the very same pixels
        every frame and its landmarks do not wander with the window."""
        x0, y0, x1, y1 = (float(v) for v in face.box)
        side = max(self.crop_scale * max(x1 - x0, y1 - y0), 16.0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if previous is not None:
            px, py, ps = previous
            if abs(side / ps - 1.0) < 0.2 and \
                    np.hypot(cx - px - ps / 2, cy - py - ps / 2) < self.recentre * ps:
                return previous
        return int(round(cx - side / 2)), int(round(cy - side / 2)), int(round(side))

    def search(self, rgb: np.ndarray, face: Face,
               window: tuple[int, int, int] | None = None) -> Face | None:
        """The face near ``face``'s box in ``rgb`` (the follower on the 128 px crop of
        ``window``, default :meth:`window` of ``face``), or ``None``; ``None`` also
        without a follower."""
        if self.follower is None:
            return None
        import cv2

        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in face.box)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        rx0, ry0, rs = window if window is not None else self.window(face)
        ax0, ay0 = max(rx0, 0), max(ry0, 0)
        ax1, ay1 = min(rx0 + rs, w), min(ry0 + rs, h)
        if ax1 - ax0 < 8 or ay1 - ay0 < 8:
            return None
        k = self.SIDE / rs
        region = rgb[ay0:ay1, ax0:ax1]
        nw = max(1, int(round((ax1 - ax0) * k)))
        nh = max(1, int(round((ay1 - ay0) * k)))
        small = cv2.resize(region, (nw, nh), interpolation=cv2.INTER_AREA if k < 1
                           else cv2.INTER_LINEAR)
        ox, oy = int(round((ax0 - rx0) * k)), int(round((ay0 - ry0) * k))
        nw, nh = min(nw, self.SIDE - ox), min(nh, self.SIDE - oy)
        canvas = np.zeros((self.SIDE, self.SIDE, 3), np.uint8)
        canvas[oy:oy + nh, ox:ox + nw] = small[:nh, :nw]
        found = self.follower.detect(canvas)
        if not found:
            return None
        kx, ky = (ax1 - ax0) / max(small.shape[1], 1), (ay1 - ay0) / max(small.shape[0], 1)

        def to_photo_px(p):  # canvas pixel indices -> photo pixel indices
            p = np.asarray(p, np.float64)
            return np.stack([(p[..., 0] - ox + 0.5) * kx - 0.5 + ax0,
                             (p[..., 1] - oy + 0.5) * ky - 0.5 + ay0], -1)

        old = max(x1 - x0, y1 - y0)
        best, best_d = None, 0.5 * old
        for f in found:
            b = f.box.astype(np.float64)
            c = to_photo_px([(b[0] + b[2]) / 2 - 0.5, (b[1] + b[3]) / 2 - 0.5])
            size = max(b[2] - b[0], b[3] - b[1]) * kx
            dist = float(np.hypot(c[0] - cx + 0.5, c[1] - cy + 0.5))
            if dist < best_d and 0.5 < size / max(old, 1e-6) < 2.0:
                best, best_d = f, dist
        if best is None:
            return None
        corners = to_photo_px(best.box.reshape(2, 2) - 0.5) + 0.5
        box = np.clip(corners.reshape(4), 0, [w, h, w, h]).astype(np.float32)
        return Face(box, to_photo_px(best.landmarks).astype(np.float32), best.score)


def _default_follower(detector):
    """BlazeFace short range for the crop search (the detector's own file when it is
    a BlazeFace detector), or ``None`` when it cannot be loaded."""
    from tfface.faces.detect import BlazeFaceDetector, DetectorError

    # the crop holds the tracked face at 0.5-2x its size: no small-face pass, no reframing,
    # and no context looks (the face was confirmed by them when the detector found it)
    opts = dict(threshold=0.5, small_faces=False, reframe=False, context=False)
    try:
        if isinstance(detector, BlazeFaceDetector):
            return BlazeFaceDetector(model_file=detector.model_file, **opts)
        return BlazeFaceDetector(**opts)
    except DetectorError:
        return None


def box_jitter(matrices) -> float:
    """Mean frame-to-frame jitter (px) of an aligned crop's corners in the photo: the
    mean norm of the corners' second differences (zero for any steady motion)."""
    from tfface.faces.align import invert, transform_points

    corners = []
    for m, size in matrices:
        corners.append(transform_points(invert(m), [[0, 0], [size, 0], [0, size], [size, size]]))
    c = np.asarray(corners)
    if len(c) < 3:
        return 0.0
    acc = c[2:] - 2 * c[1:-1] + c[:-2]
    return float(np.linalg.norm(acc, axis=-1).mean())
