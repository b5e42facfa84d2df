"""A blind file that decides its own hole: the occluder segmenter and a mask-input
inpainter in one int8 graph.

Restore's two-file path runs the occluder segmenter on the aligned face, clips its
probability to the face's ellipse (``FACE_SUPPORT``), takes ``p > 0.5`` as the hole,
adds the pixels above 0.1 connected to it (the occluder's unsure edge), grows it by 2 px
and gives face and hole to the V-Net, whose ``keep_known`` output
returns every pixel outside the hole as it came in. :func:`build_blind` writes that
whole chain as one Keras model, so one ``.tflite`` file takes only the aligned face and
returns the restored face (and, as a second output, the hole it decided):

1. the face (``S`` px) shrunk to the segmenter's side by an average pool (for an
   integer factor the same as OpenCV's area filter restore uses);
2. the segmenter, its nearest-neighbour upsamplings written as ``CONCATENATION`` +
   ``DEPTH_TO_SPACE`` (the same values; XNNPACK has no kernel for
   ``RESIZE_NEAREST_NEIGHBOR``, which split the shipped segmenter into 4 partitions);
3. :class:`HoleDecision` (float): the probability upsampled bilinearly to ``S`` (half-pixel
   centres, as ``cv2.resize``), multiplied by the face ellipse, thresholded as
   ``ceil(relu(p - t))`` (exactly ``p > t``, with ops XNNPACK runs: a ``GREATER`` +
   ``CAST`` would leave the delegate), joined by the pixels above the edge threshold
   connected to it (a geodesic dilation: ``edge_steps`` 3x3 max pools, each masked by
   ``p > edge``; restore's two-file path takes the whole connected component, the file
   reaches ``edge_steps`` px from the confident hole) and grown by max pools whose union is
   OpenCV's elliptic structuring element;
4. the V-Net on ``[face, hole]``; its ``keep_known`` composite keeps every pixel outside
   the decided hole bit for bit.

Every convolution is int8; the hole decision, the V-Net's classical fill (``hole_fill``)
and its composite (``restored``) stay float, as in the shipped V-Net file. The layers of
both networks are the trained models' own (shared, not copied), so the Keras model
computes exactly what the two Keras models do in sequence.
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

import numpy as np

import tfface  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tensorflow as tf

from tfface import keras
from tfface.segmenter.infer import face_support

HOLE_LAYER = "blind_hole"
"""The float layer that turns the segmenter's probability into the hole."""
OUTPUTS = ("restored", "where_restored")
"""Signature outputs in file order: the restored face, then the hole the file decided
(the converter orders a signature's outputs by name, so the face comes first)."""
KEEP_FLOAT = ("blind_seg_in", HOLE_LAYER, "hole_fill", "restored")
"""Layers the int8 file keeps in float: the segmenter's input pool (XNNPACK takes an int8
``AVERAGE_POOL_2D`` only when its input and output share one scale, which calibration
does not give: in int8 it left the delegate and split the graph), the hole decision, the
V-Net's classical fill and its keep-known composite (in int8 it would round the kept
pixels)."""


@keras.utils.register_keras_serializable(package="tfface")
class DepthToSpaceUpsample(keras.layers.Layer):
    """Nearest-neighbour upsampling by ``factor`` as ``factor²`` copies of the channels
    and ``depth_to_space``: the same values as ``UpSampling2D(nearest)``, from ops
    (``CONCATENATION``, ``DEPTH_TO_SPACE``) that XNNPACK runs in int8."""

    def __init__(self, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        f = self.factor
        return tf.nn.depth_to_space(tf.concat([x] * (f * f), axis=-1), f)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def ellipse_rectangles(grow: int) -> list[tuple[int, int]]:
    """``(height, width)`` of centred rectangles whose union is OpenCV's elliptic
    structuring element of radius ``grow`` (``MORPH_ELLIPSE``, ``2·grow+1`` square), so a
    dilation by it is the maximum of max pools of these sizes."""
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    rects = set()
    for row in k:
        w = int(row.sum())
        if w:
            h = int((k.sum(axis=1) >= w).sum())
            rects.add((h, w))
    # every rectangle is centred: check that their union is the element itself
    union = np.zeros_like(k)
    c = grow
    for h, w in rects:
        union[c - h // 2:c + h // 2 + 1, c - w // 2:c + w // 2 + 1] = 1
    if not np.array_equal(union, k):
        raise ValueError(f"the elliptic element of radius {grow} is not a union of centred "
                         "rectangles")
    return sorted(rects)


def edge_on(threshold: float, edge_threshold: float | None, edge_steps: int) -> bool:
    """Whether the unsure edge joins the hole: an edge threshold below ``threshold`` and
    at least one step of reach."""
    return edge_threshold is not None and edge_threshold < threshold and edge_steps > 0


@keras.utils.register_keras_serializable(package="tfface")
class HoleDecision(keras.layers.Layer):
    """Occluder probability ``[B, s, s, 1]`` → hole ``[B, S, S, 1]`` (0/1, float).

    Bilinear upsampling to ``size`` (when ``s < size``), times the face ellipse
    ``support`` (``None``: no clip), ``p > threshold`` written as ``ceil(relu(p - t))``;
    with ``edge_threshold`` below ``threshold``, the pixels above it 8-connected to that
    hole within ``edge_steps`` px join it (hysteresis, as
    :meth:`~tfface.segmenter.infer.OccluderSegmenter.hole_from`); then grown by ``grow``
    px with OpenCV's elliptic element (max pools)."""

    def __init__(self, size: int, threshold: float = 0.5, grow: int = 2,
                 support: Sequence[float] | None = None, edge_threshold: float | None = None,
                 edge_steps: int = 8, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.size = int(size)
        self.threshold = float(threshold)
        self.grow = int(grow)
        self.edge_threshold = None if edge_threshold is None else float(edge_threshold)
        self.edge_steps = int(edge_steps)
        self.support = None if support is None else [float(v) for v in support]
        self._rects = ellipse_rectangles(self.grow) if self.grow > 0 else []
        self._support = (None if self.support is None
                         else tf.constant(face_support(self.size, self.support)[None, ..., None]))

    def call(self, p):
        p = tf.cast(p, tf.float32)
        if p.shape[1] != self.size:
            p = tf.image.resize(p, [self.size, self.size], method="bilinear")
        if self._support is not None:
            p = p * self._support
        hole = tf.math.ceil(tf.nn.relu(p - self.threshold))
        if edge_on(self.threshold, self.edge_threshold, self.edge_steps):
            allowed = tf.math.ceil(tf.nn.relu(p - self.edge_threshold))
            for _ in range(self.edge_steps):
                hole = tf.nn.max_pool2d(hole, 3, 1, "SAME") * allowed
        if self._rects:
            grown = [tf.nn.max_pool2d(hole, [h, w], 1, "SAME") for h, w in self._rects]
            hole = grown[0]
            for g in grown[1:]:
                hole = tf.maximum(hole, g)
        return hole

    def get_config(self):
        return {**super().get_config(), "size": self.size, "threshold": self.threshold,
                "grow": self.grow, "support": self.support,
                "edge_threshold": self.edge_threshold, "edge_steps": self.edge_steps}


def _replay(model: keras.Model, inputs: list, replace=None) -> list:
    """``model``'s outputs computed on ``inputs`` by its own layers (weights shared), one
    layer at a time so the caller's model holds them flat (a nested model would hide its
    layers from ``--keep-float``); ``replace(layer)`` may return another layer to call
    instead (``None``: the layer itself)."""
    mapping = {id(t): new for t, new in zip(model.inputs, inputs)}

    def sub(t):
        return mapping.get(id(t), t)

    for depth in sorted(model._nodes_by_depth, reverse=True):  # noqa: SLF001
        for node in model._nodes_by_depth[depth]:  # noqa: SLF001
            if node.is_input:
                continue
            layer = node.layer
            other = replace(layer) if replace is not None else None
            args = tf.nest.map_structure(sub, node.call_args)
            kwargs = tf.nest.map_structure(sub, node.call_kwargs)
            outs = (other or layer)(*args, **kwargs)
            for old, new in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(outs)):
                mapping[id(old)] = new
    return [mapping[id(t)] for t in model.outputs]


def _xnnpack_upsampling(layer):
    """The segmenter's nearest upsampling as a :class:`DepthToSpaceUpsample`."""
    if isinstance(layer, keras.layers.UpSampling2D):
        fy, fx = layer.size
        if fy != fx or layer.interpolation != "nearest":
            raise ValueError(f"segmenter layer {layer.name}: only square nearest upsampling "
                             "has a depth-to-space form")
        return DepthToSpaceUpsample(int(fy), name=layer.name)
    return None


def build_blind(segmenter: keras.Model, inpainter: keras.Model, *, threshold: float = 0.5,
                grow: int = 2, support: Sequence[float] | None = None,
                hole_output: bool = True, edge_threshold: float | None = None,
                edge_steps: int = 8) -> keras.Model:
    """One model: aligned face ``occluded`` in [-1, 1] → ``restored`` (and, with
    ``hole_output``, ``where_restored``: the hole the segmenter decided, 0/1).

    ``segmenter``: :func:`tfface.segmenter.model.build_segmenter` (face → ``mask_prob``);
    ``inpainter``: a mask-input generator with ``keep_known`` (``[occluded, mask]`` →
    ``restored``), e.g. the shipped V-Net. ``support``: the face ellipse restore clips
    the hole to (``OccluderSegmenter.FACE_SUPPORT``); ``grow``: px the hole is grown by
    before the inpainter (restore's ``hole_grow``); ``edge_threshold`` (``None``: off) and
    ``edge_steps``: the unsure edge that joins the hole (:class:`HoleDecision`).

    Raises:
        ValueError: the two models do not fit together (sizes, inputs, no keep_known).
    """
    if len(inpainter.inputs) != 2 or int(inpainter.inputs[1].shape[-1]) != 1:
        raise ValueError("the inpainter must take [occluded, mask] (a mask-input model)")
    if "restored" not in [ly.name for ly in inpainter.layers] or \
            type(inpainter.get_layer("restored")).__name__ != "KeepKnown":
        raise ValueError("the inpainter must keep the pixels outside the hole (keep_known): "
                         "the blind file's only guarantee that nothing else changes")
    size = int(inpainter.inputs[0].shape[1])
    seg_size = int(segmenter.inputs[0].shape[1])
    if size % seg_size:
        raise ValueError(f"the inpainter's side {size} is not a multiple of the segmenter's "
                         f"{seg_size}")
    image = keras.Input((size, size, 3), name="occluded")
    x = image
    if size != seg_size:
        f = size // seg_size
        x = keras.layers.AveragePooling2D(f, name="blind_seg_in")(x)
    prob = _replay(segmenter, [x], _xnnpack_upsampling)[0]
    hole = HoleDecision(size, threshold, grow, support, edge_threshold=edge_threshold,
                        edge_steps=edge_steps, name=HOLE_LAYER)(prob)
    restored = _replay(inpainter, [image, hole])[0]
    outputs = [restored]
    if hole_output:
        outputs.append(keras.layers.Activation("linear", dtype="float32",
                                               name=OUTPUTS[1])(hole))
    model = keras.Model(image, outputs if hole_output else restored, name="blind")
    return model


# --------------------------------------------------------------------------- conversion

def _serving_function(model: keras.Model):
    spec = tf.TensorSpec([1, *model.inputs[0].shape[1:]], tf.float32, name="occluded")
    names = OUTPUTS[:len(model.outputs)]

    @tf.function(input_signature=[spec])
    def serve(x):
        ys = model(x, training=False)
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
        return dict(zip(names, ys))

    return serve.get_concrete_function()


def convert_blind(model: keras.Model, calibration: np.ndarray, *,
                  keep_float: Sequence[str] = KEEP_FLOAT) -> tuple[bytes, dict[str, Any]]:
    """The int8 file of :func:`build_blind`'s model (float input and outputs), calibrated
    on ``calibration`` (``[N, S, S, 3]`` faces in [-1, 1], occluded and clean); ``keep_float``
    layers stay float. Returns the bytes and what the conversion did."""
    from tfface.export import selective
    from tfface.export.quantize import representative_from

    if len(calibration) < 1:
        raise ValueError("int8 calibration needs faces")
    rep = representative_from([c[None].astype(np.float32) for c in calibration])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([_serving_function(model)], model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.float32
    conv.inference_output_type = tf.float32
    t0 = time.time()
    present = [k for k in keep_float if k in [ly.name for ly in model.layers]]
    res = selective.keep_float(model, conv, rep, present, None)
    return res.content, {"float_layers": res.float_layers,
                         "calibration_samples": int(len(calibration)),
                         "seconds": round(time.time() - t0, 1)}


def run_blind(runner, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(restored, hole)`` of a blind file (a :class:`~tfface.lite.LiteRunner`) on faces
    ``[N, S, S, 3]`` in [-1, 1]; ``hole`` is ``None`` when the file has one output."""
    it = runner.interpreter
    i = runner.inputs[0]
    outs = runner.outputs
    restored, holes = [], []
    for x in faces:
        it.set_tensor(i["index"], runner._feed(i, x[None]))  # noqa: SLF001
        it.invoke()
        restored.append(runner._read(outs[0]))  # noqa: SLF001
        if len(outs) > 1:
            holes.append(runner._read(outs[1]))  # noqa: SLF001
    return (np.concatenate(restored),
            np.concatenate(holes) if holes else None)


def blind_card(content: bytes, *, file: str, segmenter_file: str, inpainter_file: str,
               keras_model: keras.Model, conversion: dict[str, Any], fidelity: dict[str, Any],
               support: Sequence[float] | None, threshold: float, grow: int,
               extra: dict[str, Any] | None = None, edge_threshold: float | None = None,
               edge_steps: int = 8) -> dict[str, Any]:
    """The model card of a blind file: what each tensor is, and that the file's own
    segmenter decides the hole."""
    from tfface.cards import new_card, tensor_entry
    from tfface.export.convert import _litert_version
    from tfface.export.metadata import min_runtime_version, op_inventory
    from tfface.lite import LiteRunner

    runner = LiteRunner(content)
    outputs = [tensor_entry(runner.outputs[0], "output", "inpaint", OUTPUTS[0])]
    if len(runner.outputs) > 1:
        hole = tensor_entry(runner.outputs[1], "output", "inpaint", OUTPUTS[1])
        hole.update({
            "kind": "mask", "description": "the hole the file decided and restored: 1 where "
            "its own segmenter found the occluder (inside the face ellipse, grown by "
            f"{grow} px), 0 where the output is the input bit for bit",
            "layout": "NHWC, 1 channel", "value_range": [0.0, 1.0],
            "denormalization": {"formula": "hole = y > 0.5 (the values are exactly 0 or 1)"}})
        outputs.append(hole)
    return new_card(
        os.path.splitext(file)[0], file, "inpaint", "blind: occluder segmenter + vnet (one graph)",
        preset="mobile",
        parameters=int(keras_model.count_params()),
        inputs=[tensor_entry(d, "input") for d in runner.inputs],
        outputs=outputs,
        signature="serving_default",
        hole={
            "decided_by": "the file's own occluder segmenter: no mask is given and none is "
                          "needed; the pixels it does not mark come back unchanged",
            "segmenter": segmenter_file,
            "inpainter": inpainter_file,
            "steps": [
                "the face (aligned crop, the template framing) shrunk 2x by an average pool "
                "to the segmenter's side",
                "the segmenter's occluder probability, upsampled bilinearly (half-pixel "
                "centres) to the face's side",
                "times the face ellipse (cx, cy, rx, ry in fractions of the side: "
                f"{list(support) if support is not None else 'none'}), as tfface-restore and "
                "the web page clip",
                f"hole = p > {threshold}"
                + (f", and the pixels with p > {edge_threshold} 8-connected to it within "
                   f"{edge_steps} px (the occluder's unsure edge)"
                   if edge_on(threshold, edge_threshold, edge_steps) else "")
                + f", grown by {grow} px (OpenCV's elliptic element)",
                "the V-Net restores the face given the hole; outside the hole the output is "
                "the input bit for bit (keep_known, in float)",
            ],
            "same_as": "tfface-restore's two-file path (segmenter file, clip, thresholds, "
                       "grow, V-Net file) up to int8 rounding"
                       + (f" and the edge's reach (restore: the whole connected region; "
                          f"the file: {edge_steps} px)"
                          if edge_on(threshold, edge_threshold, edge_steps) else ""),
        },
        quantization={"mode": "int8", "io": "float",
                      "calibration_samples": conversion["calibration_samples"],
                      "calibration": "faces of the --data-dir folder with the segmenter's "
                                     "training occluders drawn on them (a tenth clean)",
                      "keep_float": list(conversion["float_layers"]),
                      "float_layers": list(conversion["float_layers"])},
        ops=op_inventory(content),
        min_runtime_version=min_runtime_version(content),
        size_bytes=len(content),
        fidelity=fidelity,
        versions={"tfface": tfface.__version__, "tensorflow": tf.__version__,
                  "ai_edge_litert": _litert_version()},
        conversion_seconds=conversion["seconds"],
        **(extra or {}),
    )


def fidelity(model: keras.Model, content: bytes, faces: np.ndarray) -> dict[str, Any]:
    """How closely the file follows the Keras model on ``faces``: PSNR of the restored
    faces (8-bit), the share of hole pixels that differ, and whether every pixel outside
    the file's hole is the input's own."""
    from tfface.export.convert import psnr_between
    from tfface.lite import LiteRunner

    ref = model.predict(faces, verbose=0)
    ref_img, ref_hole = (ref[0], ref[1]) if isinstance(ref, list) else (ref, None)
    got, hole = run_blind(LiteRunner(content), faces)
    out: dict[str, Any] = {
        "images": int(len(faces)),
        "reference": "the Keras model (the two trained networks in sequence)",
        "psnr_db_vs_keras": round(psnr_between(ref_img, got), 3),
        "max_abs_error_vs_keras": round(float(np.max(np.abs(ref_img - got))), 5),
    }
    if hole is not None:
        outside = hole[..., 0] < 0.5
        same = np.all(got == faces.astype(np.float32), axis=-1)
        out["hole_pixels_differing_from_keras"] = round(
            float(np.mean((hole > 0.5) != (ref_hole > 0.5))), 5)
        out["outside_hole_unchanged"] = bool(np.all(same[outside]))
    return out


def write_blind(path: str, content: bytes, card: dict[str, Any]) -> dict[str, Any]:
    """Write the file and its JSON card (the card embedded in the file too)."""
    from tfface.export.convert import finish_card, write_model_and_card

    final = finish_card(content, card)
    return write_model_and_card(path, os.path.splitext(path)[0] + ".json", final, card)


class BlindExportError(ValueError):
    """The blind file cannot be built from these parts; the message says why."""


def load_segmenter_model(path: str, filters: Sequence[int], calib: np.ndarray) -> keras.Model:
    """The segmenter as a Keras model: a run folder's, or a float/fp16 ``.tflite``'s
    weights read back (batch norms unfolded; :func:`init_from_tflite`)."""
    from tfface.segmenter.model import build_segmenter, init_from_tflite, load_segmenter

    try:
        if os.path.isdir(path):
            return load_segmenter(path)[0]
        from tfface.lite import LiteRunner

        size = int(LiteRunner(path).inputs[0]["shape"][1])
        model = build_segmenter(size, filters)
        small = tf.image.resize(calib, [size, size], method="area").numpy()
        init_from_tflite(model, path, small)
        return model
    except (OSError, ValueError, KeyError) as e:
        raise BlindExportError(f"--segmenter {path}: {e}") from e


def load_inpainter(run_dir: str) -> keras.Model:
    """The mask-input inpainter of a run folder, with ``keep_known``."""
    from tfface.config import ConfigError
    from tfface.rundir import load_generator

    try:
        cfg, gen = load_generator(run_dir)
    except (OSError, ConfigError) as e:
        raise BlindExportError(f"--inpainter {run_dir}: {e}") from e
    p = cfg.model.params
    if cfg.data.task != "inpaint" or not p.get("mask_input") or not p.get("keep_known"):
        raise BlindExportError(f"--inpainter {run_dir} is not a mask-input inpainter with "
                               "keep_known (the blind file keeps every pixel outside its hole)")
    return gen


def occluded_faces(data_dir: str, n: int, size: int, split: str = "train",
                   facemask_dir: str | None = None, seed: int = 4321) -> np.ndarray:
    """``[n, size, size, 3]`` faces of a folder in [-1, 1] with the segmenter's training
    occluders drawn on them (a tenth left clean on ``train``): int8 calibration for both
    networks of the file (never a held-out occluder)."""
    from tfface.segmenter.data import segmenter_dataset
    from tfface.segmenter.model import SegmenterConfig

    cfg = SegmenterConfig(data_dir=data_dir, image_size=size, batch_size=8, seed=seed,
                          facemask_dir=facemask_dir)
    out, seen = [], 0
    for x, _ in segmenter_dataset(cfg, split):
        out.append(x.numpy())
        seen += len(out[-1])
        if seen >= n:
            break
    return np.concatenate(out)[:n].astype(np.float32)


def export_blind(segmenter: str, inpainter: str, data_dir: str, out_dir: str, *,
                 segmenter_filters: Sequence[int] = (16, 32, 64, 128), calibration: int = 200,
                 threshold: float = 0.5, grow: int = 2, clip: bool = True,
                 hole_output: bool = True, samples: int = 4, facemask_dir: str | None = None,
                 progress: bool = False, edge_threshold: float | None = 0.1,
                 edge_steps: int = 8) -> dict[str, Any]:
    """Build, convert and write ``out_dir/model_int8_mixed.tflite`` with its card (and
    ``samples`` sample inputs/outputs for apps); returns the card."""
    from tfface.segmenter.infer import OccluderSegmenter

    def say(msg):
        if progress:
            print(msg, flush=True)

    say("loading the segmenter and the inpainter")
    vnet = load_inpainter(inpainter)
    size = int(vnet.inputs[0].shape[1])
    say(f"drawing {calibration} calibration faces and 16 check faces from {data_dir}")
    try:
        calib = occluded_faces(data_dir, calibration, size, facemask_dir=facemask_dir)
        check = occluded_faces(data_dir, 16, size, split="eval", facemask_dir=facemask_dir)
    except (OSError, ValueError) as e:
        raise BlindExportError(f"--data-dir {data_dir}: {e}") from e
    seg = load_segmenter_model(segmenter, segmenter_filters, calib[:64])
    support = OccluderSegmenter.FACE_SUPPORT if clip else None
    try:
        model = build_blind(seg, vnet, threshold=threshold, grow=grow, support=support,
                            hole_output=hole_output, edge_threshold=edge_threshold,
                            edge_steps=edge_steps)
    except ValueError as e:
        raise BlindExportError(str(e)) from e
    say("converting to int8 (the hole decision and the V-Net's fill and composite in float)")
    content, conversion = convert_blind(model, calib)
    fid = fidelity(model, content, check)
    name = "model_int8_mixed.tflite"
    card = blind_card(content, file=name, segmenter_file=_portable(segmenter),
                      inpainter_file=_portable(inpainter), keras_model=model,
                      conversion=conversion, fidelity=fid, support=support,
                      threshold=threshold, grow=grow, edge_threshold=edge_threshold,
                      edge_steps=edge_steps)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    card = write_blind(path, content, card)
    if samples:
        write_samples(path, card, samples)
    say(f"wrote {path}")
    return card


def _portable(path: str) -> str:
    from tfface.export.convert import portable_name

    return portable_name(path) or path


def write_samples(path: str, card: dict[str, Any], n: int) -> str:
    """Sample inputs (built-in synthetic faces, redistributable, damaged by the V-Net's
    eval synthesis), the outputs the file gives for them and ``<stem>_samples.json``, in
    the layout of :func:`tfface.export.android.export_android`."""
    from tfface.config import resolve
    from tfface.data.sources.synthetic import banner_silenced
    from tfface.export.android import samples_manifest, write_samples_manifest
    from tfface.export.convert import fidelity_batch
    from tfface.imageio import to_float, to_uint8, write_image
    from tfface.lite import LiteRunner

    dest = os.path.dirname(os.path.abspath(path))
    stem = os.path.splitext(os.path.basename(path))[0]
    os.makedirs(os.path.join(dest, "samples"), exist_ok=True)
    runner = LiteRunner(path)
    cfg = resolve("vnet", "mobile", {"data": {
        "source": "synthetic", "image_size": int(runner.inputs[0]["shape"][1]),
        "eval_occlusions": {"facemask": 1.0, "sunglasses": 1.0}}})
    with banner_silenced():  # synthetic on purpose: the user chose no training source
        batch = fidelity_batch(cfg, n)
    entries = []
    for i in range(min(n, len(batch["clean"]))):
        px = to_uint8(batch["occluded"][i])
        item = {"inputs": {"occluded": f"samples/{stem}_{i}_occluded.png"},
                "expected": f"samples/{stem}_{i}_expected.png",
                "target": f"samples/{stem}_{i}_target.png"}
        write_image(os.path.join(dest, item["inputs"]["occluded"]), px)
        out = to_uint8(runner.run_named({"occluded": to_float(px)[None]})[0])
        write_image(os.path.join(dest, item["expected"]), out)
        write_image(os.path.join(dest, item["target"]), to_uint8(batch["clean"][i]))
        entries.append(item)
    return write_samples_manifest(os.path.join(dest, f"{stem}_samples.json"), samples_manifest(
        os.path.basename(path), f"{stem}.json", entries,
        "built-in synthetic faces (redistributable), with a face mask or sunglasses drawn on "
        "them"))
