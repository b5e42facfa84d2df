"""``auto+mtcnn``: the default detector's faces plus the faces MTCNN finds that it missed,
each confirmed by BlazeFace's wide looks (:class:`ConfirmedUnion`, built by
:func:`tfface.faces.detect.make_detector`; measured in docs/faces.md, "Small faces and
covered eyes")."""

from __future__ import annotations

import inspect

import numpy as np

from tfface.faces.detect import (BLAZEFACE_MOUTH_SHIFT, BlazeFaceDetector, DetectorError, Face,
                                 MTCNNDetector, _check_rgb, _iou, is_score)

__all__ = ["ConfirmedUnion", "blazeface_six_points"]


def blazeface_six_points(lm: np.ndarray) -> np.ndarray:
    """Five landmarks (:class:`Face` order) → the six BlazeFace keypoints the looks of
    :class:`BlazeFaceDetector` read (its eyes and mouth centre; the inverse of
    :func:`blazeface_five_points` there; the ears, which no look reads, are put one eye
    distance out along the eye line)."""
    lm = np.asarray(lm, np.float64)
    eyes = lm[:2]
    eye_vec = eyes[1] - eyes[0]
    down = np.array([-eye_vec[1], eye_vec[0]])
    mouth = lm[3:5].mean(0) - BLAZEFACE_MOUTH_SHIFT * down
    return np.stack([eyes[0], eyes[1], lm[2], mouth, eyes[0] - eye_vec,
                     eyes[1] + eye_vec]).astype(np.float32)


def _same_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two boxes are one face: IoU at least 0.3, or the centre of either inside
    the other (two detectors box a small face differently)."""
    if _iou(a, b[None])[0] >= 0.3:
        return True
    ca, cb = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
    return bool(np.all((b[:2] <= ca) & (ca <= b[2:])) or np.all((a[:2] <= cb) & (cb <= a[2:])))


class ConfirmedUnion:
    """``auto+mtcnn``: the default detector's faces, plus each face MTCNN finds that it
    missed, kept only when BlazeFace's four wide looks at it (the strong rule's
    :meth:`BlazeFaceDetector.strong_looks`, which see the photo around the face and score
    a covered face by its eyes and outline) average at least ``confirm_threshold``.

    MTCNN proposes most of the small and covered faces the default never proposes
    (docs/faces.md), but on its own it also returns non-faces, which the photo path would
    restore; the wide looks are the check those get. Costs MTCNN's time (about 0.2 s more
    per 1024x768 photo). ``added`` / ``rejected`` count MTCNN's extra faces kept / dropped.

    Args:
        confirm_threshold: mean score of the four looks an extra face needs, in (0, 1)
            (default: BlazeFace's ``strong_threshold``, 0.66, the same looks' bar for a
            strong first look).
        mtcnn_threshold: MTCNN's final-stage score, in (0, 1); 0.7, below MTCNN's own 0.9
            default, proposes a few more covered faces for the looks to confirm (chosen on
            composed photos of tuning seeds, docs/faces.md).
        **kwargs: the BlazeFace options (:class:`BlazeFaceDetector`).
    """

    name = "auto+mtcnn"

    def __init__(self, confirm_threshold: float | None = None, mtcnn_threshold: float = 0.7,
                 **kwargs):
        for k, v in (("confirm_threshold", confirm_threshold),
                     ("mtcnn_threshold", mtcnn_threshold)):
            if not (v is None and k == "confirm_threshold" or is_score(v)):
                raise DetectorError(f"face detector option {k} must be a number in (0, 1), "
                                    f"got {v!r}")
        known = set(inspect.signature(BlazeFaceDetector).parameters)
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise DetectorError(f"face detector 'auto+mtcnn' has no option {', '.join(unknown)} "
                                "(its options: confirm_threshold, mtcnn_threshold and "
                                "BlazeFace's: " + ", ".join(sorted(k for k in known
                                                                   if k != "model_file"))
                                + ")")
        self.blazeface = BlazeFaceDetector(**kwargs)
        self.mtcnn = MTCNNDetector(threshold=mtcnn_threshold)
        self.confirm_threshold = float(self.blazeface.strong_threshold
                                       if confirm_threshold is None else confirm_threshold)
        self.added = self.rejected = 0

    def detect(self, rgb: np.ndarray) -> list[Face]:
        rgb = _check_rgb(rgb)
        out = list(self.blazeface.detect(rgb))
        for f in self.mtcnn.detect(rgb):
            if any(_same_face(f.box, g.box) for g in out):
                continue
            sc, _ = self.blazeface.strong_looks(rgb, f.box, blazeface_six_points(f.landmarks))
            if sc.mean() >= self.confirm_threshold:
                out.append(f)
                self.added += 1
            else:
                self.rejected += 1
        return sorted(out, key=lambda f: -f.score)
