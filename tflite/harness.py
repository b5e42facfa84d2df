"""Run ``.tflite`` files in the LiteRT interpreter with float images in, float out.

:class:`LiteRunner` quantizes float inputs and dequantizes outputs from the tensors'
own quantization parameters, so callers always compare float images in the model
card's range, whatever the file's I/O types are.
"""

from __future__ import annotations

import os

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


TFLITE_IDENTIFIER = b"TFL3"
"""FlatBuffer file identifier of every ``.tflite`` file (bytes 4..8)."""


def check_tflite_header(head: bytes, name: str = "the file") -> None:
    """Raise ValueError unless ``head`` (a file's first 8 bytes) starts a TFLite model."""
    if len(head) < 8 or head[4:8] != TFLITE_IDENTIFIER:
        what = "empty" if not head else "not a TFLite model"
        raise ValueError(f"{name} is {what} (a .tflite file carries the identifier "
                         f"'TFL3' at byte 4); pass a file written by python -m tflite.convert")


class LiteRunner:
    """A ``.tflite`` model as a float-in, float-out callable over NHWC batches."""

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
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise ValueError(f"{name} cannot be loaded by the LiteRT interpreter ({detail}); "
                             "is it a complete .tflite file written by tflite.convert?") from e
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()

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

    def __call__(self, *xs: np.ndarray) -> np.ndarray:
        """Run a batch (any size; the file's batch-1 graph is run per image). Inputs are
        positional in the file's input order (:attr:`input_keys`); prefer :meth:`run_named`
        for models with several inputs."""
        if len(xs) != len(self.inputs):
            raise ValueError(f"model takes {len(self.inputs)} inputs, got {len(xs)}")
        n = xs[0].shape[0]
        outs = []
        for i in range(n):
            for detail, x in zip(self.inputs, xs):
                want = tuple(int(v) for v in detail["shape"][1:])
                if tuple(int(v) for v in x.shape[1:]) != want:
                    raise ValueError(
                        f"input '{self.tensor_key(detail)}' of the model expects images of "
                        f"shape {want}, got {tuple(int(v) for v in x.shape[1:])}; resize the "
                        "images (or use the model converted for this size)"
                    )
                self.interpreter.set_tensor(detail["index"], self._feed(detail, x[i : i + 1]))
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
) -> list[dict]:
    """Invoke latency (ms) after warm-up: p50/p90/mean over ``runs`` invocations, for each
    thread count, with and without the XNNPACK delegate (LiteRT's default CPU delegate).
    Inputs are zeros of the right type (latency of these graphs does not depend on data)."""
    import time

    out = []
    for use_xnn in xnnpack:
        for n in threads:
            it = _interpreter(model, n, use_xnn)
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
