"""The models that restore faces: one interface for Keras runs and ``.tflite`` files.

A :class:`Restorer` wraps either a run's Keras generator (read from its run directory
by :mod:`tfface.rundir`) or a ``.tflite`` file (run by :class:`tfface.lite.LiteRunner`,
described by its model card, :mod:`tfface.cards`) behind the same ``restore_face``
call, so Keras, TFLite and the tests share every step: resizing a square face crop to
the model's size, normalizing pixels to [-1, 1], running the model and mapping the
output back to pixels. :class:`FaceModel` is all the photo path
(:mod:`tfface.restore.photo`, :mod:`tfface.restore.sr`, :mod:`tfface.restore.square`)
asks of a model.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import cv2
import numpy as np

from tfface.cards import load_card
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
    decides_hole: bool = False
    """The file returns, beside the restored face, the hole its own segmenter decided
    (a blind file of :mod:`tfface.export.blind`): that hole decides what changes."""


class FaceModel(Protocol):
    """What the photo path asks of a model (a :class:`Restorer`, or a stand-in in tests).

    ``for_face(native)`` picks the model for a face spanning ``native`` photo pixels
    (itself, or one file of a :class:`RestorerLadder`); ``restore_face`` restores one
    square uint8 RGB crop of side ``spec.input_size``; ``restore_face_and_hole`` also
    returns the hole a blind file decided (only when ``spec.decides_hole``)."""

    spec: ModelSpec
    name: str

    def for_face(self, native: float) -> "FaceModel": ...

    def restore_face(self, face: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray: ...

    def restore_face_and_hole(self, face: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class Restorer:
    """A model that restores square face crops given as uint8 RGB."""

    def __init__(self, predict: Callable[..., np.ndarray], spec: ModelSpec, name: str,
                 last_hole: Callable[[], np.ndarray] | None = None):
        self._predict = predict
        self.spec = spec
        self.name = name
        self._last_hole = last_hole

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

            if _returns_its_hole(runner, card, spec):
                spec.decides_hole = True
                return cls(predict, spec, os.path.basename(model), lambda: runner.output(1))
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
        x = to_float(resize_square(face, s))[None]
        inputs = [x]
        m = None
        if mask is not None:
            m = resize_square(mask.astype(np.uint8) * 255, s, nearest=True) > 127
            m = m.astype(np.float32)[None, ..., None]
        if self.spec.mask_input:
            if m is None:
                raise InferenceError(f"model {self.name} needs the hole mask as input: "
                                     "pass --mask FILE (white = hole)")
            inputs.append(m)
        return to_uint8(self._predict(*inputs)[0])

    def restore_face_and_hole(self, face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A file that decides its own hole (``spec.decides_hole``): the restored crop
        (uint8 RGB) and the hole it restored (bool, the model's side)."""
        if self._last_hole is None:
            raise InferenceError(f"model {self.name} does not return the hole it restores")
        restored = self.restore_face(face)
        return restored, np.asarray(self._last_hole())[0, ..., 0] > 0.5


def _returns_its_hole(runner: LiteRunner, card: dict, spec: ModelSpec) -> bool:
    """Whether a blind file's second output is the hole it decided: its card says so
    (``kind`` mask) and the tensor is one channel at the restored face's side."""
    outs = card.get("outputs") or []
    if spec.task != "inpaint" or spec.mask_input or len(runner.outputs) < 2 or len(outs) < 2:
        return False
    shape = [int(v) for v in runner.outputs[1]["shape"]]
    return (isinstance(outs[1], dict) and outs[1].get("kind") == "mask"
            and shape == [1, spec.output_size, spec.output_size, 1])


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
        kinds = {(r.spec.task, r.spec.scale, r.spec.mask_input, r.spec.decides_hole)
                 for r in rs}
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

    def restore_face_and_hole(self, face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.for_face(face.shape[0]).restore_face_and_hole(face)


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


def resize_square(img: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    """A square image resized to ``size`` (area filter down, bicubic up, or nearest)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    shrink = img.shape[0] > size
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return cv2.resize(img, (size, size), interpolation=interp)
