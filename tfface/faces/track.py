"""Landmark smoothing across video frames, so a pasted face does not jitter.

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
from dataclasses import dataclass, replace

import numpy as np

from tfface.faces.detect import Face


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class _Track:
    x: np.ndarray
    dx: np.ndarray
    seen: int


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
            d = max(float(np.linalg.norm(lm[1] - lm[0])), 1.0)
            c = lm[:2].mean(0)
            best, best_dist = None, self.match
            for i, t in enumerate(self.tracks):
                if i in used:
                    continue
                dist = float(np.linalg.norm(t.x[:2].mean(0) - c)) / d
                if dist < best_dist:
                    best, best_dist = i, dist
            if best is None:
                self.tracks.append(_Track(lm.copy(), np.zeros_like(lm), self.frame))
                used.add(len(self.tracks) - 1)
                out.append(f)
                continue
            t = self.tracks[best]
            used.add(best)
            dx = (lm - t.x) / self.dt
            a_d = _alpha(self.d_cutoff, self.dt)
            t.dx = a_d * dx + (1 - a_d) * t.dx
            speed = float(np.linalg.norm(t.dx, axis=1).mean()) / d  # eye distances / s
            a = _alpha(self.min_cutoff + self.beta * speed, self.dt)
            t.x = a * lm + (1 - a) * t.x
            t.seen = self.frame
            out.append(replace(f, landmarks=t.x.astype(np.float32)))
        self.tracks = [t for t in self.tracks if self.frame - t.seen <= self.max_missing]
        return out


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
