"""Selective (mixed) quantization: keep chosen layers of a full-integer file in float.

TensorFlow Lite's quantization debugger (``tf.lite.experimental.QuantizationDebugger``)
calibrates a model once, measures the error every quantized tensor adds (against the
same tensor in float, on the calibration data) and can re-quantize the calibrated model
with some ops denylisted: those ops run in float with DEQUANTIZE/QUANTIZE around them,
everything else stays int8.

Ops are addressed by the names of their output tensors, which the converter composes
from the Keras layer names fused into the op (``vnet/vnet_down_0_0_activation/Relu6;
vnet/vnet_down_0_0/Conv2D``), so a Keras layer name selects the op(s) it became. The op
writing the model's output is named after the signature output instead; it belongs to
the output layer and the chain of layers fused into it (e.g. ``restored`` and
``vnet_output``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

import tfface  # noqa: F401
import tensorflow as tf

from tfface import keras


class SelectiveQuantizationError(ValueError):
    """Bad layer names or an impossible target; the message says what is valid."""


@contextlib.contextmanager
def _bundled_interpreter():
    """The debugger's own models carry NumericVerify ops that only TensorFlow's bundled
    interpreter knows, so it (and this module's graph inspection) runs
    ``tf.lite.Interpreter``; its deprecation notice says nothing about the user's run
    and is not printed."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is "
                                "deprecated", category=UserWarning)
        yield


def _interpreter(content: bytes):
    with _bundled_interpreter():
        return tf.lite.Interpreter(model_content=content)


def _op_outputs(content: bytes) -> list[tuple[str, list[str], list[int]]]:
    """(op name, output tensor names, input tensor indices) of every op of the graph."""
    it = _interpreter(content)
    out = []
    for op in it._get_ops_details():  # pylint: disable=protected-access
        names = [it._get_tensor_details(i, 0)["name"] for i in op["outputs"]]  # noqa: SLF001
        out.append((op["op_name"], names, list(op["inputs"])))
    return out


def _components(tensor_name: str) -> set[str]:
    parts = set()
    for piece in tensor_name.split(";"):
        for part in piece.split(":")[0].split("/"):
            parts.add(part)
            if part.startswith("quant_"):  # tfmot's wrapper of a layer in a QAT model
                parts.add(part[len("quant_"):])
    return parts


def _tail_chain(model: keras.Model, matched: set[str]) -> list[str]:
    """The output layer and the single-input chain before it that has no op of its own
    in the file (fused into the op writing the output). An output layer with ops of
    its own (e.g. a composite: SUB and MUL under its name, then the ADD that writes
    the output under the signature's name) owns the output op too."""
    # The graph is read from the model's config: a layer shared with another model
    # (e.g. after strip_pruning) also has inbound nodes from that model.
    config = model.get_config()
    inbound = {lc["name"]: [n[0] for node in lc["inbound_nodes"] for n in node]
               for lc in config["layers"]}
    kinds = {lc["name"]: lc["class_name"] for lc in config["layers"]}
    chain = []
    name = config["output_layers"][0][0]
    while kinds.get(name) != "InputLayer":
        if name in matched and chain:
            break  # a layer before the output with ops of its own: not fused into it
        chain.append(name)
        if name in matched or len(inbound.get(name, [])) != 1:
            break
        name = inbound[name][0]
    return chain


def layer_tensors(model: keras.Model, content: bytes) -> dict[str, list[str]]:
    """Keras layer name → names of the op output tensors it became in ``content``.

    Layers folded into a neighbour (batch norms, activations fused into a convolution)
    share the neighbour's op; layers with no op at all (inputs, dropout) are absent.
    """
    names = {layer.name for layer in model.layers
             if not isinstance(layer, keras.layers.InputLayer)}
    ops = [(op, outs) for op, outs, _ in _op_outputs(content)
           if op not in ("QUANTIZE", "DEQUANTIZE", "NumericVerify")]
    found: dict[str, list[str]] = {}
    for _, outs in ops:
        for t in outs:
            for layer in names & _components(t):
                found.setdefault(layer, []).append(t)
    graph_outputs = {d["name"] for d in _interpreter(content).get_output_details()}
    tail_ops = [t for _, outs in ops for t in outs
                if t in graph_outputs and not (names & _components(t))]
    if tail_ops:
        for layer in _tail_chain(model, set(found)):
            found[layer] = found.get(layer, []) + list(tail_ops)
    order = [layer.name for layer in model.layers]
    return {k: found[k] for k in sorted(found, key=order.index)}


def check_layer_names(requested: Sequence[str], valid: dict[str, list[str]]) -> None:
    unknown = [n for n in requested if n not in valid]
    if unknown:
        raise SelectiveQuantizationError(
            f"--keep-float: no layer named {', '.join(repr(u) for u in unknown)} has an op "
            f"in the converted graph. Valid names: {', '.join(valid)}")


@dataclass
class MixedResult:
    content: bytes
    float_layers: list[str]
    details: dict[str, Any] = field(default_factory=dict)


def _debugger(converter: tf.lite.TFLiteConverter, data: Callable[[], Iterable]):
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    opts = tf.lite.experimental.QuantizationDebugOptions()
    with _bundled_interpreter():
        return tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=data, debug_options=opts)


def _requantize(debugger, nodes: list[str], io_type) -> bytes:
    with _bundled_interpreter():  # setting the options re-runs the debugger's models
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=list(nodes) or None)
        content = debugger.get_nondebug_quantized_model()
    if io_type is not None and io_type != tf.float32:
        from tensorflow.lite.python.util import modify_model_io_type

        content = _keep_io_names(content, modify_model_io_type(content, io_type, io_type))
    return content


def _keep_io_names(before: bytes, after: bytes) -> bytes:
    """Give the I/O tensors of ``after`` the names they had in ``before``: changing the
    I/O type drops the QUANTIZE/DEQUANTIZE at the edges and with them the names that
    app code and the model card use (``serving_default_occluded:0``)."""
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    old, new = fbu.read_model_from_bytearray(bytearray(before)), \
        fbu.read_model_from_bytearray(bytearray(after))
    g_old, g_new = old.subgraphs[0], new.subgraphs[0]
    for attr in ("inputs", "outputs"):
        for i_old, i_new in zip(getattr(g_old, attr), getattr(g_new, attr)):
            g_new.tensors[i_new].name = g_old.tensors[i_old].name
    return bytes(fbu.convert_object_to_bytearray(new))


def calibrated_layers(model: keras.Model, converter: tf.lite.TFLiteConverter,
                      data: Callable[[], Iterable]):
    """A debugger over ``converter``'s calibrated model and the layer → tensor map."""
    dbg = _debugger(converter, data)
    return dbg, layer_tensors(model, dbg.calibrated_model)


def keep_float(model: keras.Model, converter: tf.lite.TFLiteConverter,
               data: Callable[[], Iterable], layers: Sequence[str], io_type=None) -> MixedResult:
    """Full-integer ``content`` with the ops of ``layers`` kept in float."""
    dbg, mapping = calibrated_layers(model, converter, data)
    check_layer_names(layers, mapping)
    nodes = sorted({t for name in layers for t in mapping[name]})
    return MixedResult(_requantize(dbg, nodes, io_type), list(layers),
                       {"denylisted_tensors": nodes})


def layer_errors(debugger, mapping: dict[str, list[str]]) -> dict[str, float]:
    """Per Keras layer: the largest RMSE/scale of its quantized tensors on the debug
    data (the quantization error in units of one int8 step; ~0.29 is pure rounding)."""
    with _bundled_interpreter():
        debugger.options = tf.lite.experimental.QuantizationDebugOptions()
        debugger.run()
    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    buf.seek(0)
    per_tensor = {}
    for row in csv.DictReader(buf):
        scale = float(row["scale"])
        rmse = float(row["mean_squared_error"]) ** 0.5
        per_tensor[row["tensor_name"]] = rmse / scale if scale > 0 else 0.0
    out = {}
    for layer, tensors in mapping.items():
        vals = [per_tensor[t] for t in tensors if t in per_tensor]
        if vals:
            out[layer] = float(max(vals))
    return out


def auto_mixed(model: keras.Model, converter: tf.lite.TFLiteConverter,
               data: Callable[[], Iterable], max_drop_db: float,
               quality: Callable[[bytes], float], float_quality: float,
               io_type=None) -> MixedResult:
    """Keep the fewest layers in float so that ``quality(file) >= float_quality - max_drop_db``.

    Layers are ranked by the debugger's per-layer error (:func:`layer_errors`); the
    first ``k`` are kept float, with ``k`` found by doubling then bisection (assumes
    that quality does not drop when one more of the worst layers turns float).
    ``quality`` maps a file's content to PSNR (dB) against ground truth.
    """
    if max_drop_db < 0:
        raise SelectiveQuantizationError(f"--auto-mixed takes a PSNR drop in dB >= 0, "
                                         f"got {max_drop_db}")
    dbg, by_layer = calibrated_layers(model, converter, data)
    # One candidate per op: layers fused into one op (conv + its activation) are one
    # choice, named by the first of them (a name --keep-float accepts).
    mapping: dict[str, list[str]] = {}
    seen: set[tuple[str, ...]] = set()
    for layer, tensors in by_layer.items():
        if tuple(tensors) not in seen:
            seen.add(tuple(tensors))
            mapping[layer] = tensors
    errors = layer_errors(dbg, mapping)
    ranked = sorted(errors, key=lambda k: -errors[k])
    # A file with every layer float matches the float model to float rounding only.
    target = float_quality - max_drop_db - 1e-3
    tried: dict[int, tuple[float, bytes]] = {}

    def attempt(k: int) -> float:
        if k not in tried:
            names = ranked[:k]
            nodes = sorted({t for n in names for t in mapping[n]})
            content = _requantize(dbg, nodes, io_type)
            tried[k] = (quality(content), content)
        return tried[k][0]

    lo, hi = -1, None  # lo: largest k known to fail; hi: smallest k known to pass
    k = 0
    while k <= len(ranked):
        if attempt(k) >= target:
            hi = k
            break
        lo = k
        k = 1 if k == 0 else min(2 * k, len(ranked)) if k < len(ranked) else len(ranked) + 1
    if hi is None:
        raise SelectiveQuantizationError(
            f"--auto-mixed {max_drop_db:g}: even with every layer in float the file reaches "
            f"only {attempt(len(ranked)):.2f} dB vs the float model's {float_quality:.2f} dB")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if attempt(mid) >= target:
            hi = mid
        else:
            lo = mid
    psnr, content = tried[hi]
    return MixedResult(content, ranked[:hi], {
        "target_db": round(target, 3), "float_psnr_db": round(float_quality, 3),
        "psnr_db": round(psnr, 3), "max_drop_db": max_drop_db,
        "layer_error_rmse_per_step": {k: round(errors[k], 4) for k in ranked},
        "tried": {str(k): round(v[0], 3) for k, v in sorted(tried.items())},
    })


def float_op_layers(model: keras.Model, content: bytes) -> list[tuple[str, list[str]]]:
    """Compute ops of ``content`` with a float output, each with the Keras layers it
    came from (empty list when no layer name is found in its tensor names)."""
    by_tensor: dict[str, list[str]] = {}
    for layer, tensors in layer_tensors(model, content).items():
        for t in tensors:
            by_tensor.setdefault(t, []).append(layer)
    it = _interpreter(content)
    out = []
    for op in it._get_ops_details():  # pylint: disable=protected-access
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE") or not len(op["outputs"]):
            continue
        t = it._get_tensor_details(op["outputs"][0], 0)  # noqa: SLF001
        if t["dtype"] in (np.float32, np.float16):
            out.append((op["op_name"], by_tensor.get(t["name"], [])))
    return out


def layers_in_message(model: keras.Model, message: str) -> list[str]:
    """Keras layer names that occur in a converter error message (its op locations)."""
    import re

    words = set(re.findall(r"[A-Za-z0-9_.\-]+", message))
    return [layer.name for layer in model.layers
            if layer.name in words and not isinstance(layer, keras.layers.InputLayer)]
