"""Run ``.tflite`` files in the LiteRT interpreter with float images in, float out.

:class:`LiteRunner` quantizes float inputs and dequantizes outputs from the tensors'
own quantization parameters, so callers always compare float images in the model
card's range, whatever the file's I/O types are.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

try:  # LiteRT is the supported interpreter; tf.lite.Interpreter is deprecated.
    from ai_edge_litert.interpreter import Interpreter
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
        if isinstance(model, (bytes, bytearray)):
            self.interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
        else:
            if not os.path.exists(model):
                raise FileNotFoundError(f"no such .tflite file: {model}")
            self.interpreter = Interpreter(model_path=os.fspath(model), num_threads=num_threads)
        self.interpreter.allocate_tensors()
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


# -- latency, memory, validation -----------------------------------------------------

def _interpreter(model: str | os.PathLike | bytes, threads: int, xnnpack: bool) -> Interpreter:
    from ai_edge_litert.interpreter import OpResolverType

    kwargs = dict(num_threads=threads,
                  experimental_op_resolver_type=(OpResolverType.AUTO if xnnpack else
                                                 OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    if isinstance(model, (bytes, bytearray)):
        return Interpreter(model_content=bytes(model), **kwargs)
    return Interpreter(model_path=os.fspath(model), **kwargs)


def measure_latency(
    model: str | os.PathLike | bytes,
    threads: tuple[int, ...] = (1, 2, 4),
    xnnpack: tuple[bool, ...] = (True, False),
    runs: int = 20,
    warmup: int = 3,
    input_shapes: Sequence[Sequence[int]] | None = None,
) -> list[dict]:
    """Invoke latency (ms) after warm-up: p50/p90/mean over ``runs`` invocations, for each
    thread count, with and without the XNNPACK delegate (LiteRT's default CPU delegate).
    Inputs are zeros of the right type (latency of these graphs does not depend on data).
    Files with open input dimensions are timed at ``input_shapes`` (one full shape per
    input, batch included), which they then need."""
    import time

    out = []
    for use_xnn in xnnpack:
        for n in threads:
            it = _interpreter(model, n, use_xnn)
            details = it.get_input_details()
            if input_shapes is not None:
                for d, shape in zip(details, input_shapes):
                    if tuple(d["shape"]) != tuple(shape):
                        it.resize_tensor_input(d["index"], list(shape), strict=True)
            elif any(is_dynamic(d) for d in details):
                raise ValueError("this .tflite file has open input dimensions: time it at "
                                 "given sizes (input_shapes)")
            it.allocate_tensors()
            for d in it.get_input_details():
                it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
            for _ in range(warmup):
                it.invoke()
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                it.invoke()
                times.append((time.perf_counter() - t0) * 1e3)
            out.append({"threads": n, "xnnpack": use_xnn, "runs": runs,
                        "p50_ms": float(np.percentile(times, 50)),
                        "p90_ms": float(np.percentile(times, 90)),
                        "mean_ms": float(np.mean(times))})
    return out


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MB; Linux/macOS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
