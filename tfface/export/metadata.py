"""What a ``.tflite`` file says about itself: runtime version and ops.

:func:`op_inventory` lists the file's operators and which of them compute in int8,
so a "full-integer" file with a float fallback is caught. The model card embedded
in the file (a named metadata entry, ``tfface_model_card``) is read and written by
:mod:`tfface.cards`.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import tfface  # noqa: F401
from tensorflow.lite.python import schema_py_generated as schema_fb
from tensorflow.lite.tools import flatbuffer_utils as fbu

from tfface.cards import metadata_entries, read_flatbuffer

# Ops that only move data between int and float at the graph's edges.
_CONVERSION_OPS = {"QUANTIZE", "DEQUANTIZE"}
_TENSOR_TYPES = {v: k for k, v in vars(schema_fb.TensorType).items() if not k.startswith("_")}


def min_runtime_version(model: bytes | str | os.PathLike) -> str | None:
    """The minimum TFLite runtime version the converter recorded for the file."""
    raw = metadata_entries(read_flatbuffer(model)).get("min_runtime_version")
    return raw.rstrip(b"\0").decode("ascii", errors="replace") if raw else None


def op_inventory(model: bytes | str | os.PathLike) -> dict[str, Any]:
    """Operator counts of the main graph, and which compute ops run in which type.

    An op "runs in int8" when its output tensor is int8/uint8 (int16 counts as
    integer too; inputs are no guide: TRANSPOSE_CONV's first input is an int32
    shape); ``float_ops`` lists compute ops (all but QUANTIZE/DEQUANTIZE) with a
    float output, i.e. the float fallbacks of a full-integer file.
    """
    m = read_flatbuffer(model)
    graph = m.subgraphs[0]
    counts: Counter[str] = Counter()
    integer, float_ops = 0, []
    for op in graph.operators:
        name = fbu.opcode_to_name(m, op.opcodeIndex)
        counts[name] += 1
        if name in _CONVERSION_OPS or not len(op.outputs):
            continue
        ttype = _TENSOR_TYPES.get(graph.tensors[op.outputs[0]].type, "?")
        if ttype in ("INT8", "UINT8", "INT16"):
            integer += 1
        elif ttype in ("FLOAT32", "FLOAT16"):
            float_ops.append(name)
    compute = sum(c for n, c in counts.items() if n not in _CONVERSION_OPS)
    return {"counts": dict(sorted(counts.items())), "compute_ops": compute,
            "integer_ops": integer, "float_ops": float_ops}
