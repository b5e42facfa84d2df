"""How the faces of a photo are found for a model: the one choice ``tfface-restore`` makes.

:func:`make_locator` returns the object that finds, restores and pastes back the faces of
a photo for a loaded :class:`~tfface.restore.model.Restorer`:

- a super-resolution file: :class:`~tfface.restore.sr.NativeSRPipeline` (every face cut
  out at the photo's own resolution, tiled when larger than the model's input);
- an occlusion-removal file: :class:`~tfface.restore.photo.FacePipeline` (detect, align,
  restore, paste back), with the occluder segmenter finding the hole when the model needs
  one and no hole mask is given;
- ``center=True`` or an OpenCV detector file (``.xml``/``.onnx``):
  :class:`~tfface.restore.square.FaceLocator`, one square a photo, no alignment.
"""

from __future__ import annotations

import os
from typing import Callable

from tfface.restore.model import InferenceError, Restorer
from tfface.shipped import default_segmenter


def load_segmenter(path: str | None = None):
    """The occluder segmenter at ``path``, or the shipped one.

    Raises:
        InferenceError: no path given and the shipped segmenter is missing.
    """
    from tfface.segmenter.infer import OccluderSegmenter

    chosen = path or default_segmenter()
    if path is None and not os.path.exists(chosen):
        raise InferenceError(f"the occluder segmenter {chosen} is missing: pass --mask FILE "
                             "(white = hole) or --segmenter FILE")
    return OccluderSegmenter(chosen)


def make_locator(restorer: Restorer, face_detector: str = "auto", *, center: bool = False,
                 has_mask: bool = False, segmenter: str | None = None, min_face: int = 16,
                 progress: Callable | None = None, sr_mirror: bool | None = None):
    """The face finder for ``restorer`` (see the module docstring).

    ``face_detector``: a detector name or file (:func:`tfface.faces.detect.make_detector`);
    ``has_mask``: the caller gives the hole, so no segmenter is loaded; ``segmenter``: its
    file (default: the shipped one); ``min_face``: smaller faces are left alone and
    counted; ``progress``: a tqdm-like factory for the tiles of a large SR face (None: no
    bar); ``sr_mirror``: SR faces also run mirrored and averaged
    (:class:`~tfface.restore.sr.NativeSRPipeline`; None: for x2 files only; x4 keeps its
    one-face photo well under 2 s without it, docs/faces.md; ``pipelines.restore`` turns
    it off for videos).
    """
    from tfface.restore.square import FaceLocator

    if center or face_detector.lower().endswith((".xml", ".onnx")):
        # One square a photo: a model that takes the hole as an input gets it from the
        # segmenter, as on the face path, when no mask is given.
        needs_hole = restorer.spec.mask_input and not has_mask
        return FaceLocator(None if center else face_detector, center=center,
                           segmenter=load_segmenter(segmenter) if needs_hole else None)
    from tfface.faces.detect import make_detector

    if restorer.spec.task == "sr":
        from tfface.restore.sr import NativeSRPipeline

        mirror = int(restorer.spec.scale) == 2 if sr_mirror is None else bool(sr_mirror)
        return NativeSRPipeline(make_detector(face_detector), min_face=min_face,
                                progress=progress, mirror=mirror)
    from tfface.restore.photo import FacePipeline

    hole_finder = None
    if restorer.spec.task == "inpaint" and not has_mask:
        hole_finder = load_segmenter(segmenter)
    return FacePipeline(make_detector(face_detector), hole_finder, min_face=min_face)
