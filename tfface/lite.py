"""Run ``.tflite`` files in the LiteRT interpreter with float images in, float out.

:class:`LiteRunner` quantizes float inputs and dequantizes outputs from the tensors'
own quantization parameters, so callers always compare float images in the model
card's range, whatever the file's I/O types are. Restoring (:mod:`tfface.restore.model`),
evaluation, the converter's fidelity check and the validator all run files through
it; timing and per-op profiles are in ``tfface.export.harness``.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from tfface.fileio import TFLITE_IDENTIFIER

try:  # LiteRT is the supported interpreter; tf.lite.Interpreter is deprecated.
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError as e:  # pragma: no cover - exercised only without the dependency
    raise ImportError(
        "tfface needs the LiteRT interpreter: pip install ai-edge-litert"
    ) from e


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """float → integer tensor values: round(x / scale) + zero_point, saturated to dtype.

    Rounds half away from zero, as TFLite's own quantize kernel does (``np.round``
    would round half to even and differ by one level on exact halves).
    """
    info = np.iinfo(dtype)
    v = np.asarray(x, np.float64) / scale
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """integer tensor values → float: (q - zero_point) * scale."""
    return ((np.asarray(q, np.float64) - zero_point) * scale).astype(np.float32)


def check_tflite_header(head: bytes, name: str = "the file") -> None:
    """Raise ValueError unless ``head`` (a file's first 8 bytes) starts a TFLite model."""
    if len(head) < 8 or head[4:8] != TFLITE_IDENTIFIER:
        what = "empty" if not head else "not a TFLite model"
        raise ValueError(f"{name} is {what} (a .tflite file carries the identifier "
                         f"'TFL3' at byte 4); pass a file written by python -m tflite.convert")


class ShapeMismatchError(ValueError):
    """Images do not fit a model input whose shape is fixed in the file."""


def is_dynamic(detail: dict) -> bool:
    """Whether a tensor has dimensions the file leaves open (-1 in ``shape_signature``)."""
    sig = detail.get("shape_signature")
    return sig is not None and len(sig) > 0 and bool(np.any(np.asarray(sig) < 0))


class LiteRunner:
    """A ``.tflite`` model as a float-in, float-out callable over NHWC batches.

    Files converted with open dimensions (``-1`` in an input's ``shape_signature``,
    e.g. a fully convolutional model exported with ``(None, None, 3)`` images) are
    resized to the images they are given (``resize_tensor_input`` then
    ``allocate_tensors``); a dynamic batch dimension runs the whole batch in one
    invocation. Files with fixed shapes get a :class:`ShapeMismatchError` naming
    the shape they need when the images do not match it.
    """

    def __init__(self, model: str | os.PathLike | bytes, num_threads: int = 2):
        """Load a ``.tflite`` file (path) or its bytes.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not a TFLite model or the interpreter rejects it.
        """
        name = "the model bytes"
        if isinstance(model, (bytes, bytearray)):
            head = bytes(model[:8])
        else:
            name = os.fspath(model)
            if not os.path.isfile(name):
                raise FileNotFoundError(f"no such .tflite file: {name}")
            with open(name, "rb") as f:
                head = f.read(8)
        check_tflite_header(head, name)
        try:
            if isinstance(model, (bytes, bytearray)):
                self.interpreter = Interpreter(model_content=bytes(model),
                                               num_threads=num_threads)
            else:
                self.interpreter = Interpreter(model_path=name, num_threads=num_threads)
            # LiteRT logs "INFO: Created TensorFlow Lite XNNPACK delegate" on stderr at
            # its first allocation in a process, whatever TF_CPP_MIN_LOG_LEVEL says.
            from tfface import quiet_stderr

            with quiet_stderr():
                self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise ValueError(f"{name} cannot be loaded by the LiteRT interpreter ({detail}); "
                             "is it a complete .tflite file written by tflite.convert?") from e
        self._refresh()

    def _refresh(self) -> None:
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()

    @property
    def dynamic(self) -> bool:
        """Whether any input of the file can be resized."""
        return any(is_dynamic(d) for d in self.inputs)

    def _feed(self, detail: dict, x: np.ndarray) -> np.ndarray:
        dtype = detail["dtype"]
        if np.issubdtype(dtype, np.integer):
            scale, zp = detail["quantization"]
            return quantize(x, scale, zp, dtype)
        return np.asarray(x, dtype)

    def _read(self, detail: dict) -> np.ndarray:
        y = self.interpreter.get_tensor(detail["index"])
        if np.issubdtype(y.dtype, np.integer):
            scale, zp = detail["quantization"]
            return dequantize(y, scale, zp)
        return y.astype(np.float32)

    @staticmethod
    def tensor_key(detail: dict) -> str:
        """Dataset key of a signature tensor: ``serving_default_occluded:0`` → ``occluded``."""
        name = detail["name"].split(":")[0]
        return name[len("serving_default_"):] if name.startswith("serving_default_") else name

    @property
    def input_keys(self) -> list[str]:
        return [self.tensor_key(d) for d in self.inputs]

    def image_to_image_problem(self) -> str | None:
        """Why the file is not a face-restoration model (``None`` when it is one).

        A restoration file takes NHWC images (3 channels; a ``mask`` input 1 channel)
        and returns one NHWC RGB image: a classifier, an embedding model or a detector
        has other shapes and cannot be scored or restored with.
        """
        def shapes(details):
            return [tuple(int(v) for v in (d.get("shape_signature")
                                           if d.get("shape_signature") is not None
                                           and len(d.get("shape_signature")) else d["shape"]))
                    for d in details]

        ins, outs = shapes(self.inputs), shapes(self.outputs)
        ok_in = bool(ins) and all(
            len(s) == 4 and s[-1] == (1 if k == "mask" else 3)
            for s, k in zip(ins, self.input_keys))
        ok_out = len(outs) >= 1 and len(outs[0]) == 4 and outs[0][-1] == 3
        if ok_in and ok_out and any(k != "mask" for k in self.input_keys):
            return None

        def fmt(ss):
            return ", ".join("x".join("?" if v < 0 else str(v) for v in s) for s in ss) or "none"

        return (f"it is not an image-to-image model: it takes {fmt(ins)} and returns "
                f"{fmt(outs)}, but a face restoration file takes NHWC RGB images "
                "(N x H x W x 3, plus an optional N x H x W x 1 mask) and returns an "
                "N x H x W x 3 image")

    def output(self, i: int) -> np.ndarray:
        """Output ``i`` of the last invocation, as float (e.g. the hole a blind file returns
        beside its restored face)."""
        return self._read(self.outputs[i])

    def run_named(self, batch) -> np.ndarray:
        """Run a batch given as a mapping that holds every input by its key (e.g. a
        pipeline element with ``occluded`` and ``mask``); extra keys are ignored."""
        missing = [k for k in self.input_keys if k not in batch]
        if missing:
            raise ValueError(f"model inputs {missing} are missing from the batch")
        return self(*[batch[k] for k in self.input_keys])

    def _fit(self, shapes: list[tuple[int, ...]]) -> None:
        """Resize the inputs to ``shapes`` (batch included) where the file allows it;
        raise :class:`ShapeMismatchError` where it does not."""
        changed = False
        for detail, shape in zip(self.inputs, shapes):
            have = tuple(int(v) for v in detail["shape"])
            if have == shape:
                continue
            sig = detail.get("shape_signature")
            sig = tuple(int(v) for v in (sig if sig is not None and len(sig) else have))
            fixed_bad = [i for i, (s, w) in enumerate(zip(sig, shape)) if s >= 0 and s != w]
            if len(sig) != len(shape) or fixed_bad:
                want = tuple("any" if s < 0 else s for s in sig[1:])
                raise ShapeMismatchError(
                    f"input '{self.tensor_key(detail)}' of this .tflite file takes images of "
                    f"shape {want} (height, width, channels), got {shape[1:]}; resize the "
                    f"images to that size, or convert the model with open spatial dimensions "
                    f"(a fully convolutional model built with inputs of shape (None, None, C))"
                )
            self.interpreter.resize_tensor_input(detail["index"], list(shape), strict=True)
            changed = True
        if changed:
            self.interpreter.allocate_tensors()
            self._refresh()

    def __call__(self, *xs: np.ndarray) -> np.ndarray:
        """Run a batch (any size). Inputs are positional in the file's input order
        (:attr:`input_keys`); prefer :meth:`run_named` for models with several inputs.
        Files with a batch dimension of 1 run the batch image by image."""
        if len(xs) != len(self.inputs):
            raise ValueError(f"model takes {len(self.inputs)} inputs, got {len(xs)}")
        xs = tuple(np.asarray(x) for x in xs)
        n = xs[0].shape[0]
        if any(x.shape[0] != n for x in xs):
            raise ValueError(f"inputs have different batch sizes: {[x.shape[0] for x in xs]}")
        whole = all(is_dynamic(d) and int(d["shape_signature"][0]) < 0 for d in self.inputs)
        step = n if whole else 1
        outs = []
        for i in range(0, n, step):
            chunk = [x[i:i + step] for x in xs]
            self._fit([tuple(int(v) for v in c.shape) for c in chunk])
            for detail, c in zip(self.inputs, chunk):
                self.interpreter.set_tensor(detail["index"], self._feed(detail, c))
            self.interpreter.invoke()
            outs.append(self._read(self.outputs[0]))
        return np.concatenate(outs, axis=0)


# -- interpreters for timing -------------------------------------------------------

def interpreter_for(model: str | os.PathLike | bytes, threads: int, xnnpack: bool) -> Interpreter:
    """A LiteRT interpreter for timing: ``xnnpack`` applies LiteRT's default CPU delegate
    (XNNPACK), otherwise only the built-in kernels run."""
    kwargs = dict(num_threads=threads,
                  experimental_op_resolver_type=(OpResolverType.AUTO if xnnpack else
                                                 OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    if isinstance(model, (bytes, bytearray)):
        return Interpreter(model_content=bytes(model), **kwargs)
    return Interpreter(model_path=os.fspath(model), **kwargs)


def fill_inputs(it: Interpreter, values: Sequence[np.ndarray] | None = None,
                seed: int = 0) -> None:
    """Set every input of ``it``: ``values`` (one float batch per input in the card's
    range, its first image used, quantized for integer inputs) or, without them, random
    values over the tensor's range (uniform in [-1, 1] for float inputs, over all levels
    for integer ones). Not zeros: some built-in int8 kernels (e.g. PRELU) take
    data-dependent paths, and an all-zero input timed int8 SRGAN 1.5x too fast."""
    rng = np.random.default_rng(seed)
    for i, d in enumerate(it.get_input_details()):
        shape, dtype = tuple(d["shape"]), d["dtype"]
        if values is not None:
            x = np.broadcast_to(np.asarray(values[i], np.float32)[:1], shape)
            x = (quantize(x, *d["quantization"], dtype) if np.issubdtype(dtype, np.integer)
                 else x.astype(dtype))
        elif np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            x = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
        else:
            x = rng.uniform(-1, 1, shape).astype(dtype)
        it.set_tensor(d["index"], np.ascontiguousarray(x))
