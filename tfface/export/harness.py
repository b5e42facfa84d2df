"""Time and profile ``.tflite`` files in the LiteRT interpreter.

Latency over thread counts with and without XNNPACK, the process's peak memory, how
many partitions XNNPACK splits a graph into, and a per-op profile. The float-in,
float-out runner itself (:class:`LiteRunner`, quantize/dequantize, the interpreters
these timings use) is :mod:`tfface.lite`.
"""

from __future__ import annotations

import os
import time
from typing import Sequence

import numpy as np

from tfface.lite import fill_inputs, interpreter_for, is_dynamic


def invoke_times(interpreter, warmup: int, runs: int) -> list[float]:
    """Milliseconds of each of ``runs`` invocations after ``warmup`` untimed ones."""
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


# -- latency, memory, validation -----------------------------------------------------

def measure_latency(
    model: str | os.PathLike | bytes,
    threads: tuple[int, ...] = (1, 2, 4),
    xnnpack: tuple[bool, ...] = (True, False),
    runs: int = 20,
    warmup: int = 3,
    input_shapes: Sequence[Sequence[int]] | None = None,
    inputs: Sequence[np.ndarray] | None = None,
) -> list[dict]:
    """Invoke latency (ms) after warm-up: p50/p90/mean over ``runs`` invocations, for each
    thread count, with and without the XNNPACK delegate (LiteRT's default CPU delegate).
    ``inputs`` (one float batch per input, e.g. real eval images) are fed, else random
    values in range (see :func:`fill_inputs`). Files with open input dimensions are
    timed at ``input_shapes`` (one full shape per input, batch included), which they
    then need."""

    out = []
    for use_xnn in xnnpack:
        for n in threads:
            it = interpreter_for(model, n, use_xnn)
            details = it.get_input_details()
            if input_shapes is not None:
                for d, shape in zip(details, input_shapes):
                    if tuple(d["shape"]) != tuple(shape):
                        it.resize_tensor_input(d["index"], list(shape), strict=True)
            elif any(is_dynamic(d) for d in details):
                raise ValueError("this .tflite file has open input dimensions: time it at "
                                 "given sizes (input_shapes)")
            it.allocate_tensors()
            fill_inputs(it, inputs)
            times = invoke_times(it, warmup, runs)
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


# -- per-op profile --------------------------------------------------------------------

def delegate_partitions(model: str | os.PathLike | bytes, threads: int = 2) -> int:
    """How many partitions of the graph XNNPACK takes over (``DELEGATE`` nodes after
    the default delegate is applied). One means the whole graph runs in XNNPACK; more
    means some ops fall back to the built-in kernels and split the graph."""
    it = interpreter_for(model, threads, True)
    it.allocate_tensors()
    return sum(d["op_name"] == "DELEGATE" for d in it._get_ops_details())


def _single_op_model(m, sg, op) -> bytes:
    """A file holding only ``op`` of subgraph ``sg`` of model object ``m``: its constant
    inputs keep their data, its other inputs become the graph's inputs."""
    import copy

    from tensorflow.lite.python import schema_py_generated as schema_fb
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    def has_data(t):
        b = m.buffers[sg.tensors[t].buffer]
        return b.data is not None and len(b.data) > 0

    used = [t for t in list(op.inputs) + list(op.outputs) + list(op.intermediates or []) if t >= 0]
    remap = {t: j for j, t in enumerate(dict.fromkeys(used))}
    new = schema_fb.ModelT()
    new.version, new.operatorCodes, new.description = m.version, m.operatorCodes, b"single op"
    new.buffers = [schema_fb.BufferT()]
    sub = schema_fb.SubGraphT()
    sub.tensors = []
    for t in remap:
        tt = copy.copy(sg.tensors[t])
        new.buffers.append(m.buffers[tt.buffer] if has_data(t) else schema_fb.BufferT())
        tt.buffer = len(new.buffers) - 1
        sub.tensors.append(tt)
    sub.inputs = [remap[t] for t in op.inputs if t >= 0 and not has_data(t)]
    sub.outputs = [remap[t] for t in op.outputs]
    nop = copy.copy(op)
    nop.inputs = [remap[t] if t >= 0 else -1 for t in op.inputs]
    nop.outputs = [remap[t] for t in op.outputs]
    nop.intermediates = [remap[t] for t in (op.intermediates or [])] or None
    sub.operators = [nop]
    new.subgraphs = [sub]
    return bytes(fbu.convert_object_to_bytearray(new))


def op_profile(
    model: str | os.PathLike | bytes,
    threads: int = 2,
    xnnpack: bool = True,
    runs: int = 5,
    warmup: int = 2,
) -> list[dict]:
    """Per-op latency: each op of the main graph is cut out into a one-op file (same
    tensors, weights and quantization) and timed alone (p50 over ``runs``).

    Returns one row per op, in graph order: ``op`` (type), ``output_shape``,
    ``dtype`` (of the output), ``ms``, and ``delegated`` (whether XNNPACK took the op
    when asked to; an op it leaves to the built-in kernels also splits the full graph
    into more delegate partitions, each with its own entry/exit cost). Ops of the same
    type, shapes and types are timed once. The sum over ops approximates the whole
    graph's latency; XNNPACK's fusions across ops are not seen here. Inputs are
    random values over each tensor's range, not the activations of real images.
    """

    from tensorflow.lite.python import schema_py_generated as schema_fb
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    m = (fbu.read_model_from_bytearray(bytearray(model)) if isinstance(model, (bytes, bytearray))
         else fbu.read_model(os.fspath(model)))
    sg = m.subgraphs[0]
    type_names = {v: k for k, v in vars(schema_fb.TensorType).items() if not k.startswith("_")}
    cache: dict = {}
    rows = []
    for i, op in enumerate(sg.operators):
        name = fbu.opcode_to_name(m, op.opcodeIndex)

        def sig(ts):
            return tuple((tuple(sg.tensors[t].shape), sg.tensors[t].type) if t >= 0 else None
                         for t in ts)

        key = (name, sig(op.inputs), sig(op.outputs))
        if key not in cache:
            it = interpreter_for(_single_op_model(m, sg, op), threads, xnnpack)
            it.allocate_tensors()
            fill_inputs(it)
            times = invoke_times(it, warmup, runs)
            delegated = any(d["op_name"] == "DELEGATE" for d in it._get_ops_details())
            cache[key] = (float(np.percentile(times, 50)), delegated)
        out = sg.tensors[op.outputs[0]]
        rows.append({"index": i, "op": name, "output_shape": [int(v) for v in out.shape],
                     "dtype": type_names.get(out.type, str(out.type)).lower(),
                     "ms": cache[key][0], "delegated": cache[key][1]})
    return rows


def profile_by_op_type(rows: list[dict]) -> list[dict]:
    """:func:`op_profile` rows summed per op type (and output dtype), slowest first."""
    agg: dict = {}
    for r in rows:
        a = agg.setdefault((r["op"], r["dtype"]), {"op": r["op"], "dtype": r["dtype"], "count": 0,
                                                   "ms": 0.0, "not_delegated": 0})
        a["count"] += 1
        a["ms"] += r["ms"]
        a["not_delegated"] += not r["delegated"]
    return sorted(agg.values(), key=lambda a: -a["ms"])
