"""Restore real images with a trained model: one pre/post-processing path for all.

A :class:`Restorer` wraps either a run's Keras generator (read from its run directory
by :mod:`tfface.rundir`) or a ``.tflite`` file (run by :class:`tfface.lite.LiteRunner`,
described by its model card, :mod:`tfface.cards`) behind the same ``restore_face``
call, so Keras, TFLite and the tests share every step: locating the face, cropping it
to a square, resizing it to the model's size, normalizing pixels to [-1, 1], running
the model, mapping the output back to pixels and pasting it into the photo.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from tfface.cards import load_card
from tfface.faces.align import hole_weight
from tfface.imageio import to_float, to_uint8
from tfface.lite import LiteRunner
from tfface.rundir import generator_inputs, load_generator


class InferenceError(ValueError):
    """The input cannot be restored as asked; the message says why and what to do."""


@dataclass
class ModelSpec:
    """What restoring needs to know about a model (from its run config or model card)."""

    task: str
    input_size: int
    """Side of the model's input (the LR side for super-resolution)."""
    output_size: int
    scale: int = 1
    mask_input: bool = False


class Restorer:
    """A model that restores square face crops given as uint8 RGB."""

    def __init__(self, predict: Callable[..., np.ndarray], spec: ModelSpec, name: str):
        self._predict = predict
        self.spec = spec
        self.name = name

    @classmethod
    def load(cls, model: str) -> "Restorer":
        """From a run directory (Keras, best weights) or a ``.tflite`` file with its card."""
        if os.path.isdir(model):
            cfg, gen = load_generator(model)
            keys = generator_inputs(cfg)
            size = cfg.data.image_size
            scale = cfg.data.scale if cfg.data.task == "sr" else 1
            spec = ModelSpec(cfg.data.task, size // scale, size, scale, "mask" in keys)

            def predict(*xs):
                return gen.predict(xs[0] if len(xs) == 1 else list(xs), verbose=0)

            return cls(predict, spec, os.path.basename(os.path.normpath(model)))
        if model.endswith(".tflite"):
            if not os.path.exists(model):
                raise InferenceError(f"no such model file: {model}")
            try:
                runner = LiteRunner(model)
            except ValueError as e:
                raise InferenceError(str(e)) from e
            try:
                card = load_card(model)
            except (ValueError, OSError):  # a damaged card beside the file
                card = None
            if not card or "task" not in card or not card.get("outputs"):
                raise InferenceError(f"{model} has no usable model card (JSON beside it or "
                                     "embedded); convert it with python -m tflite.convert")
            problem = runner.image_to_image_problem()
            if problem:
                raise InferenceError(f"{model}: {problem}")
            keys = runner.input_keys
            image_key = next(k for k in keys if k != "mask")
            spec = tflite_spec(model, card, runner.inputs[keys.index(image_key)],
                               runner.outputs[0], "mask" in keys)

            def predict(*xs):
                return runner.run_named(dict(zip([image_key, "mask"], xs)))

            return cls(predict, spec, os.path.basename(model))
        if not os.path.exists(model):
            raise InferenceError(f"no such run directory or .tflite file: {model}")
        raise InferenceError(f"--model must be a run directory or a .tflite file, got '{model}'")

    @classmethod
    def load_many(cls, models: Sequence[str]) -> "Restorer":
        """One model (:meth:`load`), or several files of one kind at different resolutions
        as a :class:`RestorerLadder` that restores each face with the file that fits it."""
        models = list(models)
        if len(models) == 1:
            return cls.load(models[0])
        return RestorerLadder([cls.load(m) for m in models])

    def for_face(self, native: float) -> "Restorer":
        """The model that restores a face spanning ``native`` photo pixels (its crop side in
        the training framing): this one (a :class:`RestorerLadder` chooses)."""
        return self

    def restore_face(self, face: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Restore one square uint8 RGB face crop (any size); returns uint8 RGB at
        ``output_size`` (the crop's size times the SR scale is up to the caller)."""
        s = self.spec.input_size
        x = to_float(_resize(face, s))[None]
        inputs = [x]
        m = None
        if mask is not None:
            m = (_resize(mask.astype(np.uint8) * 255, s, nearest=True) > 127).astype(np.float32)
            m = m[None, ..., None]
        if self.spec.mask_input:
            if m is None:
                raise InferenceError(f"model {self.name} needs the hole mask as input: "
                                     "pass --mask FILE (white = hole)")
            inputs.append(m)
        return to_uint8(self._predict(*inputs)[0])


class RestorerLadder(Restorer):
    """Several files of one model kind at different input sizes (e.g. a 128 px and a 256 px
    V-Net): each face goes to the smallest file whose input covers the face's own size in
    the photo, so a small face is not enlarged into a large model and a large face is not
    shrunk into a small one; faces larger than every input go to the largest file.

    Raises:
        InferenceError: the files differ in task, scale or mask input, or two share a size.
    """

    def __init__(self, restorers: Sequence[Restorer]):
        rs = sorted(restorers, key=lambda r: r.spec.input_size)
        kinds = {(r.spec.task, r.spec.scale, r.spec.mask_input) for r in rs}
        if len(kinds) > 1:
            raise InferenceError("the --model files must be one kind of model at several "
                                 "sizes (same task, scale and mask input); got "
                                 + ", ".join(f"{r.name} ({r.spec.task}, {r.spec.input_size} px)"
                                             for r in rs))
        sizes = [r.spec.input_size for r in rs]
        if len(set(sizes)) < len(sizes):
            raise InferenceError(f"two --model files have the same input size ({sizes}); "
                                 "give one file per size")
        self.restorers = rs
        super().__init__(rs[-1]._predict, rs[-1].spec, " + ".join(r.name for r in rs))

    def for_face(self, native: float) -> Restorer:
        for r in self.restorers:
            if r.spec.input_size >= native:
                return r
        return self.restorers[-1]

    def restore_face(self, face: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        return self.for_face(face.shape[0]).restore_face(face, mask)


MAX_MODEL_SIDE = 4096
"""Largest input/output side a model file may declare for restoring (a file or card
that claims more is refused rather than allocating a gigantic image)."""
MAX_SR_SCALE = 16


def tflite_spec(name: str, card: dict, image: dict, output: dict, mask_input: bool) -> ModelSpec:
    """The :class:`ModelSpec` of a ``.tflite`` file: sizes from its own tensors, checked
    against its model card.

    A card is only a description, and it may come from anyone: it never decides a size
    on its own. The task must be one the project makes, the SR scale an integer in
    1..16 that equals the file's output side / input side, and the file's sides at most
    :data:`MAX_MODEL_SIDE`; otherwise the card does not describe the file.

    Raises:
        InferenceError: the card and the file disagree, or either is absurd.
    """
    from tfface.models.params import shown

    def bad(why: str) -> InferenceError:
        return InferenceError(f"the model card of {name} does not describe the file ({why}); "
                              "convert the model again with python -m tflite.convert")

    task = card.get("task")
    if task not in ("inpaint", "sr"):
        raise bad(f"task {shown(task)} is neither 'inpaint' nor 'sr'")
    in_shape = [int(v) for v in image["shape"]]
    out_shape = [int(v) for v in output["shape"]]
    sig = image.get("shape_signature")
    dynamic = sig is not None and len(sig) == 4 and any(int(v) < 0 for v in sig[1:3])
    raw = card.get("scale", 1)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) \
            or raw != int(raw) or not 1 <= raw <= MAX_SR_SCALE:
        raise bad(f"scale {shown(raw)} is not an integer between 1 and {MAX_SR_SCALE}")
    scale = int(raw)
    if task == "inpaint" and scale != 1:
        raise bad(f"an inpainting model with scale {scale}")
    if dynamic:  # open spatial dimensions: the card's input side, bounded
        try:
            entry = next(e for e in card["inputs"] if e.get("name") == image["name"])
            side = int(entry["shape"][1])
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, StopIteration):
            raise bad("a file with open input dimensions needs its input shape in the "
                      "card") from None
        if not 8 <= side <= MAX_MODEL_SIDE // scale:
            raise bad(f"input side {side} is not between 8 and {MAX_MODEL_SIDE // scale}")
        return ModelSpec(task, side, side * scale, scale, mask_input)
    for what, entries, detail, real in (("input", card.get("inputs"), image, in_shape),
                                        ("output", card.get("outputs"), output, out_shape)):
        entries = entries if isinstance(entries, list) else []
        named = [e for e in entries if isinstance(e, dict) and e.get("name") == detail["name"]]
        if not named and what == "output" and entries and isinstance(entries[0], dict):
            named = entries[:1]  # the first output is the restored image
        said = named[0].get("shape") if named else None
        if said is not None and said != real:
            raise bad(f"the card's {what} shape {shown(said)} is not the file's {real}")
    size, out_size = in_shape[1], out_shape[1]
    if max(in_shape[1:3] + out_shape[1:3]) > MAX_MODEL_SIDE or min(in_shape[1:3]) < 1:
        raise bad(f"the file maps {in_shape[1:3]} to {out_shape[1:3]} pixels")
    if in_shape[1] != in_shape[2] or out_shape[1] != out_shape[2] \
            or out_size != size * scale:
        raise bad(f"the file maps {size} px to {out_size} px, but the card says x{scale}")
    return ModelSpec(task, size, out_size, scale, mask_input)


HOLE_GROW, HOLE_FEATHER = 2, 2
"""Growth and soft edge (px) of a hole found by the segmenter in a square crop, as
:class:`tfface.faces.FacePipeline` uses them."""


def _resize(img: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img
    shrink = img.shape[0] > size
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return cv2.resize(img, (size, size), interpolation=interp)


class FaceLocator:
    """Find the face to restore: an OpenCV detector when one is available, else the
    centered square (the note says so once).

    ``segmenter`` (an :class:`~tfface.faces.segmenter.OccluderSegmenter`) finds the hole
    in the square for a model that takes the hole as an input when no mask is given;
    only the found hole (grown and feathered as on the face path) is replaced."""

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


def _bundled_cascade() -> str | None:
    data = getattr(cv2, "data", None)
    path = os.path.join(getattr(data, "haarcascades", ""), "haarcascade_frontalface_default.xml")
    return path if data is not None and os.path.exists(path) else None


def restore_image(
    restorer: Restorer,
    rgb: np.ndarray,
    locator: FaceLocator,
    mask: np.ndarray | None = None,
    compose: bool = False,
) -> np.ndarray:
    """Restore the face in a photo and paste it back.

    ``locator`` is a :class:`FaceLocator` (one square crop) or a
    :class:`tfface.faces.FacePipeline` (every face detected, aligned to the training
    framing, restored and pasted back with a feathered weight; with a mask, only the
    mask's pixels change).

    Inpainting keeps the photo's size; ``compose`` keeps every pixel outside the hole
    (needs ``mask``). Super-resolution returns the photo enlarged by the model's
    scale (bicubic outside the face).
    """
    if mask is not None and mask.shape[:2] != rgb.shape[:2]:
        raise InferenceError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                             f"{rgb.shape[1]}x{rgb.shape[0]}; they must match")
    if compose and mask is None:
        raise InferenceError("--compose needs --mask (it keeps the pixels outside the hole)")
    if hasattr(locator, "restore"):  # a tfface.faces.FacePipeline: every face, aligned
        return locator.restore(restorer, rgb, mask)[0]
    x, y, side = locator.locate(rgb)
    face = rgb[y : y + side, x : x + side]
    fmask = mask[y : y + side, x : x + side] if mask is not None else None
    weight = None  # of the hole the segmenter finds when the model needs one and none is given
    if fmask is None and restorer.spec.mask_input and locator.segmenter is not None:
        s = restorer.spec.input_size  # found, grown and feathered at the model's side
        found = locator.segmenter.hole(_resize(face, s))
        if found.sum() < max(4, 0.001 * s * s):  # no occluder: the photo is unchanged
            return rgb.copy()
        fmask = _resize((hole_weight(found, HOLE_GROW, 0) > 0.5).astype(np.uint8), side,
                        nearest=True) > 0
        weight = cv2.resize(hole_weight(found, HOLE_GROW, HOLE_FEATHER), (side, side),
                            interpolation=cv2.INTER_LINEAR)[..., None]
    out = restorer.restore_face(face, fmask)
    k = restorer.spec.scale
    if rgb.shape[0] * rgb.shape[1] * k * k > RESTORE_MAX_PIXELS:
        raise InferenceError(f"the x{k} result of a {rgb.shape[1]}x{rgb.shape[0]} photo would "
                             f"exceed {RESTORE_MAX_PIXELS // 1_000_000} MP; downscale the photo")
    if restorer.spec.task == "sr":
        big = cv2.resize(rgb, (rgb.shape[1] * k, rgb.shape[0] * k), interpolation=cv2.INTER_CUBIC)
        big[y * k : (y + side) * k, x * k : (x + side) * k] = _resize(out, side * k)
        return big
    result = rgb.copy()
    patch = _resize(out, side)
    if compose:
        hole = fmask.astype(bool)[..., None]
        patch = np.where(hole, patch, face)
    elif weight is not None:  # only the found hole changes, with a soft edge
        patch = np.clip(np.round(face * (1.0 - weight) + patch * weight), 0, 255
                        ).astype(np.uint8)
    result[y : y + side, x : x + side] = patch
    return result


RESTORE_MAX_PIXELS = 100_000_000
"""Largest photo restore decodes (e.g. 12000x8000); larger files are skipped."""


def read_photo(path: str, max_pixels: int = RESTORE_MAX_PIXELS) -> np.ndarray:
    """A photo file as uint8 RGB, checked from its header before decoding.

    Raises:
        InferenceError: the file is empty, unreadable, not an image, truncated, or larger
            than ``max_pixels`` (its header is read first, so a file that claims absurd
            dimensions is never decoded); the message says which.
    """
    from tfface.data.sources import SKIP_REASONS, probe_image
    from tfface.data.sources.scan import _decode_image_bytes

    probe = probe_image(path, 1, 1, max_pixels=max_pixels, reduce_jpeg=False)
    if probe.skip:
        detail = f" ({probe.detail})" if probe.detail else ""
        raise InferenceError(f"{SKIP_REASONS[probe.skip]}{detail}")
    from tfface.fileio import open_regular

    try:
        with open_regular(path) as f:
            data = f.read()
    except OSError as e:
        raise InferenceError(f"unreadable ({e.strerror or type(e).__name__})") from e
    rgb = _decode_image_bytes(data, path.lower().endswith((".jpg", ".jpeg")))
    if rgb is None:
        raise InferenceError("not a decodable image")
    return rgb


def read_mask(path: str) -> np.ndarray:
    """A user mask image as a boolean array (white/non-zero = hole)."""
    m = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise InferenceError(f"cannot read the mask image {path}")
    return m > 127

