"""Files that ship inside the package, found the same way from a checkout and a wheel.

``tfface/assets/`` holds the shipped files a photo is restored with when none is named:
the 128 px V-Net that removes occlusions (``vnet/model_int8_mixed.tflite``, int8 with its
classical fill in float) and the occluder segmenter that finds its hole
(``segmenter/segmenter_int8.tflite``), each with its model card, and the face
super-resolution files ``tfface-restore --sr 2|4`` uses (``srgan_x2/``, ``srgan/``). In
a checkout they are links to the copies in ``android_demo_assets/`` (which the converter
and the segmenter export write, and the asset tests check); a built wheel holds the files
themselves. Both are read through :mod:`importlib.resources`, so an installed
``tfface-restore photo.jpg`` restores faces with no ``--model`` and no source tree.
"""

from __future__ import annotations

import importlib.resources
import os

ASSETS = "assets"
DEFAULT_MODEL = ("vnet", "model_int8_mixed.tflite")
"""The restorer used when no model is named: the shipped occlusion-removal V-Net."""
DEFAULT_SEGMENTER = ("segmenter", "segmenter_int8.tflite")
"""The occluder segmenter used when a model needs a hole mask and none is given."""
SR_MODELS = {2: ("srgan_x2", "model_int8.tflite"), 4: ("srgan", "model_int8.tflite")}
"""The face super-resolution file of each scale (``tfface-restore --sr 2|4``)."""


def shipped_file(*parts: str) -> str:
    """The path of a file under ``tfface/assets/`` (whether or not it exists)."""
    return os.fspath(importlib.resources.files("tfface").joinpath(ASSETS, *parts))


def default_model() -> str:
    """Path of the shipped restorer (:data:`DEFAULT_MODEL`)."""
    return shipped_file(*DEFAULT_MODEL)


def default_segmenter() -> str:
    """Path of the shipped occluder segmenter (:data:`DEFAULT_SEGMENTER`)."""
    return shipped_file(*DEFAULT_SEGMENTER)


def sr_model(scale: int) -> str:
    """Path of the shipped face SR file of ``scale`` (:data:`SR_MODELS`)."""
    if scale not in SR_MODELS:
        raise ValueError(f"no shipped SR file for x{scale}; choose from "
                         + ", ".join(f"x{k}" for k in sorted(SR_MODELS)))
    return shipped_file(*SR_MODELS[scale])
