"""The square fallback: one square crop a photo, without alignment.

When no face detector with landmarks is used (``--center``, or an OpenCV detector file:
a Haar cascade XML or a YuNet ``.onnx``), :class:`FaceLocator` finds one square around
the largest face (or the centred square), the model restores it and it is pasted back
(:meth:`FaceLocator.restore`). The face path with detection and alignment is
:class:`tfface.restore.photo.FacePipeline`.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from tfface.data.sources.scan import PHOTO_MAX_PIXELS
from tfface.faces.align import crop_px, hole_weight
from tfface.restore.model import FaceModel, InferenceError, resize_square

HOLE_GROW, HOLE_FEATHER = 2, 2
"""Growth and soft edge (px) of a hole found by the segmenter in a square crop, as
:class:`tfface.restore.photo.FacePipeline` uses them."""


class FaceLocator:
    """Find the face to restore: an OpenCV detector when one is available, else the
    centered square (the note says so once).

    ``segmenter`` (an :class:`~tfface.segmenter.infer.OccluderSegmenter`) finds the hole
    in the square for a model that takes the hole as an input when no mask is given;
    only the found hole (grown and feathered as on the face path) is replaced."""

    last_report = None
    """A square has no per-face report (:class:`~tfface.restore.photo.PhotoReport` is the
    face path's); it answers the same calls as the face path otherwise."""

    def __init__(self, detector_file: str | None = None, center: bool = False,
                 segmenter=None):
        self.note: str | None = None
        self.segmenter = segmenter
        self._cascade = None
        self._yunet = None
        if center:
            self.note = "--center: the centered square of each image is restored"
            return
        path = detector_file or _bundled_cascade()
        if path and path.endswith(".onnx") and hasattr(cv2, "FaceDetectorYN"):
            self._yunet = cv2.FaceDetectorYN.create(path, "", (320, 320))
        elif path and os.path.exists(path):
            cascade = cv2.CascadeClassifier(path)
            if cascade.empty():
                raise InferenceError(f"cannot load the face detector {path}")
            self._cascade = cascade
        elif detector_file:
            raise InferenceError(f"no such face detector file: {detector_file}")
        if self._cascade is None and self._yunet is None:
            self.note = ("no OpenCV face detector is installed: the centered square of each "
                         "image is restored (pass --face-detector FILE: a Haar cascade XML or "
                         "a YuNet .onnx)")

    def locate(self, rgb: np.ndarray) -> tuple[int, int, int]:
        """(x, y, side) of a square around the largest face, enlarged to include hair."""
        h, w = rgb.shape[:2]
        box = None
        if self._cascade is not None:
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            faces = self._cascade.detectMultiScale(gray, 1.1, 5, minSize=(24, 24))
            if len(faces):
                box = max(faces, key=lambda f: f[2] * f[3])
        elif self._yunet is not None:
            self._yunet.setInputSize((w, h))
            _, faces = self._yunet.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if faces is not None and len(faces):
                box = max(faces[:, :4], key=lambda f: f[2] * f[3]).astype(int)
        side = min(h, w)
        if box is None:
            return (w - side) // 2, (h - side) // 2, side
        x, y, bw, bh = (int(v) for v in box)
        side = min(int(max(bw, bh) * 1.6), h, w)  # aligned crops include hair and chin
        cx, cy = x + bw // 2, y + bh // 2
        x0 = int(np.clip(cx - side // 2, 0, w - side))
        y0 = int(np.clip(cy - side // 2, 0, h - side))
        return x0, y0, side

    def start_video(self, fps: float = 25.0, detect_every: int = 5,
                    temporal_fill: bool = True) -> None:
        """Nothing to follow across frames: every frame's square is found anew."""

    def end_video(self) -> None:
        """See :meth:`start_video`."""

    def restore(self, restorer: FaceModel, rgb: np.ndarray, mask: np.ndarray | None = None,
                compose: bool = False) -> tuple[np.ndarray, None]:
        """The photo with its square restored and pasted back (no report: ``None``);
        ``compose`` keeps every pixel outside ``mask``. Called through
        :func:`tfface.restore.photo.restore_image`, which checks the mask first."""
        x, y, side = self.locate(rgb)
        face = rgb[y : y + side, x : x + side]
        fmask = mask[y : y + side, x : x + side] if mask is not None else None
        weight = None  # of the hole the segmenter finds when the model needs one, none given
        if fmask is None and restorer.spec.mask_input and self.segmenter is not None:
            s = restorer.spec.input_size  # found, grown and feathered at the model's side
            found = self.segmenter.hole(resize_square(face, s))
            if found.sum() < max(4, 0.001 * s * s):  # no occluder: the photo is unchanged
                return rgb.copy(), None
            grow, feather = crop_px(HOLE_GROW, s), crop_px(HOLE_FEATHER, s)
            grown = (hole_weight(found, grow, 0) > 0.5).astype(np.uint8)
            fmask = resize_square(grown, side, nearest=True) > 0
            weight = cv2.resize(hole_weight(found, grow, feather), (side, side),
                                interpolation=cv2.INTER_LINEAR)[..., None]
        out = restorer.restore_face(face, fmask)
        k = restorer.spec.scale
        if rgb.shape[0] * rgb.shape[1] * k * k > PHOTO_MAX_PIXELS:
            raise InferenceError(f"the x{k} result of a {rgb.shape[1]}x{rgb.shape[0]} photo "
                                 f"would exceed {PHOTO_MAX_PIXELS // 1_000_000} MP; downscale "
                                 "the photo")
        if restorer.spec.task == "sr":
            big = cv2.resize(rgb, (rgb.shape[1] * k, rgb.shape[0] * k),
                             interpolation=cv2.INTER_CUBIC)
            big[y * k : (y + side) * k, x * k : (x + side) * k] = resize_square(out, side * k)
            return big, None
        result = rgb.copy()
        patch = resize_square(out, side)
        if compose:
            hole = fmask.astype(bool)[..., None]
            patch = np.where(hole, patch, face)
        elif weight is not None:  # only the found hole changes, with a soft edge
            patch = np.clip(np.round(face * (1.0 - weight) + patch * weight), 0, 255
                            ).astype(np.uint8)
        result[y : y + side, x : x + side] = patch
        return result, None


def _bundled_cascade() -> str | None:
    data = getattr(cv2, "data", None)
    path = os.path.join(getattr(data, "haarcascades", ""), "haarcascade_frontalface_default.xml")
    return path if data is not None and os.path.exists(path) else None
