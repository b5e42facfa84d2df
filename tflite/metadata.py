"""What a ``.tflite`` file says about itself: embedded model card, runtime version, ops.

The model card is stored as a named metadata entry (``tfface_model_card``) of the
flatbuffer, so a file separated from its JSON card still tells an app how to feed
it. :func:`op_inventory` lists the file's operators and which of them compute in
int8, so a "full-integer" file with a float fallback is caught.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import numpy as np

import tfface  # noqa: F401
from tensorflow.lite.python import schema_py_generated as schema_fb
from tensorflow.lite.tools import flatbuffer_utils as fbu

CARD_KEY = "tfface_model_card"
# Ops that only move data between int and float at the graph's edges.
_CONVERSION_OPS = {"QUANTIZE", "DEQUANTIZE"}
_TENSOR_TYPES = {v: k for k, v in vars(schema_fb.TensorType).items() if not k.startswith("_")}


def _model(model: bytes | str | os.PathLike) -> Any:
    if isinstance(model, (bytes, bytearray)):
        return fbu.read_model_from_bytearray(bytearray(model))
    return fbu.read_model(os.fspath(model))


def _metadata(m: Any) -> dict[str, bytes]:
    out = {}
    for md in m.metadata or []:
        name = md.name.decode() if isinstance(md.name, bytes) else md.name
        data = m.buffers[md.buffer].data
        out[name] = bytes(np.asarray(data, np.uint8)) if data is not None else b""
    return out


def embed_card(model: bytes, card: dict[str, Any]) -> bytes:
    """Return ``model`` with ``card`` (JSON) stored as its ``tfface_model_card`` metadata."""
    m = _model(model)
    m.metadata = [md for md in (m.metadata or []) if md.name not in (CARD_KEY, CARD_KEY.encode())]
    buf = schema_fb.BufferT()
    buf.data = np.frombuffer(json.dumps(card, sort_keys=True).encode(), np.uint8)
    m.buffers.append(buf)
    md = schema_fb.MetadataT()
    md.name = CARD_KEY
    md.buffer = len(m.buffers) - 1
    m.metadata.append(md)
    return bytes(fbu.convert_object_to_bytearray(m))


def strip_card(model: bytes) -> bytes:
    """``model`` without its embedded card (the model itself, as the converter wrote it).

    Two files whose stripped bytes are equal hold the same model, whatever their cards
    say. The card's buffer is removed too, so nothing of the old card remains.
    """
    m = _model(model)
    keep, drop = [], set()
    for md in m.metadata or []:
        (drop.add(md.buffer) if md.name in (CARD_KEY, CARD_KEY.encode()) else keep.append(md))
    if not drop:
        return bytes(model)
    # Only the card's buffer goes; it is the last one embed_card appended, so no other
    # index moves. Anything else is refused rather than renumbered.
    if drop != {len(m.buffers) - 1}:
        raise ValueError("the embedded model card is not the file's last buffer; "
                         "the file was not written by tfface")
    m.buffers.pop()
    m.metadata = keep
    return bytes(fbu.convert_object_to_bytearray(m))


def read_card(model: bytes | str | os.PathLike) -> dict[str, Any] | None:
    """The model card embedded in a ``.tflite`` file (``None`` when it has none)."""
    raw = _metadata(_model(model)).get(CARD_KEY)
    if not raw:
        return None
    try:
        return json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):  # a damaged file: no usable card
        return None


def min_runtime_version(model: bytes | str | os.PathLike) -> str | None:
    """The minimum TFLite runtime version the converter recorded for the file."""
    raw = _metadata(_model(model)).get("min_runtime_version")
    return raw.rstrip(b"\0").decode("ascii", errors="replace") if raw else None


def op_inventory(model: bytes | str | os.PathLike) -> dict[str, Any]:
    """Operator counts of the main graph, and which compute ops run in which type.

    An op "runs in int8" when its output tensor is int8/uint8 (int16 counts as
    integer too; inputs are no guide: TRANSPOSE_CONV's first input is an int32
    shape); ``float_ops`` lists compute ops (all but QUANTIZE/DEQUANTIZE) with a
    float output, i.e. the float fallbacks of a full-integer file.
    """
    m = _model(model)
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
