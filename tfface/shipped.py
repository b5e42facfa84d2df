"""Files that ship inside the package, found the same way from a checkout and a wheel.

``tfface/assets/`` holds the shipped files a photo is restored with when none is named:
the V-Nets that remove occlusions, the 128 px one trained for fidelity
(``vnet/model_int8_mixed.tflite``, int8 with its classical fill in float) and the 256 px
one trained for detail (``vnet256/model_int8_mixed.tflite``), the occluder segmenter that
finds their hole (``segmenter/segmenter_int8.tflite``), each with its model card, and the face
super-resolution files ``tfface-restore --sr 2|4`` uses (``srgan_x2/``, ``srgan/`` and
``srgan_realism/``). In
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
"""The 128 px occlusion-removal V-Net, trained for fidelity (PSNR): every face with
``--look fidelity``, the faces of at most 128 px with ``--look realism``."""
REALISM_MODEL = ("vnet256", "model_int8_mixed.tflite")
"""The 256 px occlusion-removal V-Net, fine-tuned for detail (perceptual and spectral
terms, docs/realism.md): the faces larger than 128 px with ``--look realism``."""
LOOKS = ("realism", "fidelity")
"""What ``tfface-restore --look`` chooses among; the first is the default."""
DEFAULT_SEGMENTER = ("segmenter", "segmenter_int8.tflite")
"""The occluder segmenter used when a model needs a hole mask and none is given."""
SR_MODELS = {2: ("srgan_x2", "model_int8_mixed.tflite"), 4: ("srgan", "model_int8_mixed.tflite")}
"""The face super-resolution file of each scale trained for PSNR (``tfface-restore --sr 2|4
--look fidelity``)."""
SR_REALISM_MODELS = {4: ("srgan_realism", "model_int8_mixed.tflite")}
"""The x4 file fine-tuned for detail (the face network's perceptual term on top of L1,
docs/faces.md): ``--sr 4`` with ``--look realism``, the default. x2 has one file."""


def shipped_file(*parts: str) -> str:
    """The path of a file under ``tfface/assets/`` (whether or not it exists)."""
    return os.fspath(importlib.resources.files("tfface").joinpath(ASSETS, *parts))


def default_model() -> str:
    """Path of the shipped 128 px V-Net (:data:`DEFAULT_MODEL`), the fidelity file; the
    files ``tfface-restore`` uses are :func:`default_models`."""
    return shipped_file(*DEFAULT_MODEL)


def default_models(look: str = LOOKS[0]) -> list[str]:
    """The shipped occlusion-removal files of a look: ``fidelity`` is the 128 px V-Net
    alone; ``realism`` is a ladder of the 128 px and the 256 px V-Nets, which sends each
    face to the smallest file whose input covers it (a face of at most 128 px gains
    nothing from a 256 px file: its fill is shrunk back)."""
    if look not in LOOKS:
        raise ValueError(f"unknown look {look!r}; choose from {', '.join(LOOKS)}")
    files = [shipped_file(*DEFAULT_MODEL)]
    return files + [shipped_file(*REALISM_MODEL)] if look == "realism" else files


def default_segmenter() -> str:
    """Path of the shipped occluder segmenter (:data:`DEFAULT_SEGMENTER`)."""
    return shipped_file(*DEFAULT_SEGMENTER)


def sr_model(scale: int, look: str = LOOKS[0]) -> str:
    """Path of the shipped face SR file of ``scale`` and ``look``: realism (the default) is
    :data:`SR_REALISM_MODELS` where a scale has one, else :data:`SR_MODELS`."""
    if scale not in SR_MODELS:
        raise ValueError(f"no shipped SR file for x{scale}; choose from "
                         + ", ".join(f"x{k}" for k in sorted(SR_MODELS)))
    if look not in LOOKS:
        raise ValueError(f"unknown look {look!r}; choose from {', '.join(LOOKS)}")
    if look == "realism" and scale in SR_REALISM_MODELS:
        return shipped_file(*SR_REALISM_MODELS[scale])
    return shipped_file(*SR_MODELS[scale])
