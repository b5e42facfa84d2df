"""The framing of a face crop: where the five landmarks sit in the square every model
sees, for training crops and photos alike.

- :data:`TEMPLATE`: the canonical template (``tfface/faces/template.json``, package
  data) measured on the training faces (``benchmarks/face_template.py``); photos are
  aligned to it (:mod:`tfface.faces.align`) and folders of photos can be framed by it.
- :data:`CANONICAL_LANDMARKS`: the mean landmarks of CelebA's aligned images in their
  centred square, the framing of the folder and synthetic sources by default.
- :func:`framing_landmarks`: the landmarks of a ``data.face_framing`` name.

A base module (NumPy only): the data pipeline and the photo path both read it, and
neither imports the other for it.
"""

from __future__ import annotations

import importlib.resources
import json
import os

import numpy as np

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")
"""Landmark order. ``left``/``right`` are as seen in the image (CelebA's convention:
``left_eye`` is the eye with the smaller x), not the subject's left/right."""

# Package data, read the same way from a checkout and from an installed wheel.
_TEMPLATE_FILE = os.fspath(importlib.resources.files("tfface").joinpath("faces",
                                                                         "template.json"))


def _load_template() -> np.ndarray:
    with open(_TEMPLATE_FILE, encoding="utf-8") as f:
        doc = json.load(f)
    pts = np.asarray(doc["points"], np.float32)
    if pts.shape != (5, 2):
        raise ValueError(f"{_TEMPLATE_FILE}: points must be [5, 2]")
    return pts


TEMPLATE: np.ndarray = _load_template()
"""float32 ``[5, 2]``: (x, y) fractions of the square training crop (left eye, right
eye, nose tip, left mouth corner, right mouth corner)."""
TEMPLATE.setflags(write=False)

# Mean landmark positions of CelebA's aligned images (img_align_celeba, 178x218 px,
# list_landmarks_align_celeba.txt), rounded to whole pixels:
#   left eye (69, 111), right eye (108, 111), nose tip (88, 135),
#   left mouth corner (72, 152), right mouth corner (106, 152).
# A centered 178x178 square crop removes 20 rows at the top, so y -> y - 20, and the
# fractions are these pixel positions divided by 178.
_CELEBA_MEAN_LANDMARKS_PX = np.array(
    [[69.0, 111.0], [108.0, 111.0], [88.0, 135.0], [72.0, 152.0], [106.0, 152.0]]
)
CANONICAL_LANDMARKS: np.ndarray = (
    (_CELEBA_MEAN_LANDMARKS_PX - np.array([0.0, 20.0])) / 178.0
).astype(np.float32)
"""float32 ``[5, 2]`` ``(x, y)`` fractions of the square crop of an aligned face:
``[[0.388, 0.511], [0.607, 0.511], [0.494, 0.646], [0.404, 0.742], [0.596, 0.742]]``."""
CANONICAL_LANDMARKS.setflags(write=False)


def framing_landmarks(framing: str) -> np.ndarray:
    """The five landmarks (``[5, 2]`` fractions) of a folder's faces by ``data.face_framing``."""
    if framing == "template":
        return np.asarray(TEMPLATE, np.float32)
    if framing != "celeba":
        raise ValueError(f"data.face_framing must be 'celeba' or 'template', got '{framing}'")
    return CANONICAL_LANDMARKS
