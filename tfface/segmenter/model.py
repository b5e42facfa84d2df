"""The occluder segmenter's network, its run settings and its weights.

An inpainting model such as the shipped V-Net needs the hole mask (1 = occluder). A
person restoring a photo should not have to draw it, so restore runs this small U-Net on
each aligned face crop and takes ``mask_prob > 0.5`` as the hole
(:mod:`tfface.segmenter.infer`).

The network is :func:`tfface.models.unmask._seg_unet` (Conv 3x3 → BN → ReLU twice per
level, max pooling down, nearest upsampling + concatenation up) with a sigmoid head
named ``mask_prob``. Loss: binary cross-entropy + Dice (:func:`segmenter_loss`).
:class:`SegmenterConfig` is a run's settings (``segmenter.json``), :func:`load_segmenter`
reads a run folder back and :func:`init_from_tflite` a converted file's weights.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

import numpy as np

import tfface  # noqa: F401  (selects tf_keras before TensorFlow is imported)
import tensorflow as tf

from tfface import keras
from tfface.fileio import has_tflite_header

logger = logging.getLogger(__name__)

SEGMENTER_MIXTURE = {
    "facemask": 0.12, "realmask": 0.25, "scarf": 0.08, "hair": 0.07, "sunglasses": 0.14,
    "eye_bar": 0.07, "boxes": 0.08, "celeba_c": 0.07, "strokes_thick": 0.04, "irregular": 0.08,
}
"""Occlusions the segmenter is trained on (``irregular`` only when a mask folder is
given): photo-like face masks (``realmask``: templates of the training families,
recoloured, re-textured and lit, and procedural surgical / KN95 / N95 / cloth shapes),
scarves and hair beside the earlier occluders. Never the held-out generators
(:data:`tfface.data.occlusion.HELD_OUT`)."""

SEGMENTER_MIXTURE_V1 = {
    "facemask": 0.35, "sunglasses": 0.2, "eye_bar": 0.1, "boxes": 0.1, "celeba_c": 0.1,
    "strokes_thick": 0.05, "irregular": 0.1,
}
"""The mixture of the first shipped segmenter (a run folder written before
``occlusions`` was saved in ``segmenter.json`` used it)."""


@dataclass
class SegmenterConfig:
    """What a segmenter run needs; saved as ``segmenter.json`` in its folder."""

    data_dir: str = ""
    image_size: int = 64
    filters: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    batch_size: int = 16
    steps: int = 6000
    lr: float = 1e-3
    clean_fraction: float = 0.1
    jitter_degrees: float = 8.0
    jitter_scale: float = 0.08
    jitter_shift: float = 0.04
    mask_dir: str | None = None
    facemask_dir: str | None = None
    seed: int = 1234
    save_every: int = 200
    render_scale: int = 2
    """Occluders are drawn on the face at this many times ``image_size`` and the result
    shrunk with an area filter, so edges are anti-aliased and the occluder's texture is
    averaged as in a photo taken at a higher resolution (1: drawn at ``image_size``)."""
    photometric: float = 0.5
    """Chance of each photometric change of a training face (after the occluder is on
    it): Gaussian blur, sensor noise, JPEG, contrast/brightness, and, for the occluder
    alone, a hue and brightness change, so no single rendering cue identifies it."""
    occlusions: dict[str, float] = field(default_factory=lambda: dict(SEGMENTER_MIXTURE))
    """Training mixture ``{generator: weight}`` (no held-out generator)."""
    photo_conditions: float = 1.0
    """Scale of the chances of the photo's conditions (low light, grayscale, blur,
    noise; :func:`tfface.data.occlusion.photo_conditions`) applied to face and
    occluder alike before the occluder is shrunk; 0 = off."""
    init_from: str | None = None
    """Start (a new run) from these weights: a segmenter run folder or a shipped
    ``.tflite`` segmenter (its float weights are read back, batch norms folded; see
    :func:`init_from_tflite`)."""
    lr_warmup: int = 0
    """Steps of linear learning-rate warm-up (a fine-tune starts gently)."""
    far_weight: float = 0.0
    """Extra cross-entropy weight on the pixels farther than ``far_margin`` from the true
    hole (:func:`segmenter_loss`): a false hole on bare skin beside a mask costs this much
    more than an uncertain hole edge; 0 = off (plain cross-entropy + Dice)."""
    far_margin: int = 2
    """Pixels (at ``image_size``) around the true hole that the far penalty spares."""


def build_segmenter(image_size: int = 64, filters=(16, 32, 64, 128)) -> keras.Model:
    """Face in [-1, 1] ``[B, S, S, 3]`` (input ``occluded``) → ``mask_prob`` ``[B, S, S, 1]``."""
    from tfface.models.unmask import _seg_unet

    filters = [int(f) for f in filters]
    if image_size % (2 ** (len(filters) - 1)):
        raise ValueError(f"image_size must be divisible by {2 ** (len(filters) - 1)}, "
                         f"got {image_size}")
    image = keras.Input((image_size, image_size, 3), name="occluded")
    logits = _seg_unet(image, filters)
    prob = keras.layers.Activation("sigmoid", dtype="float32", name="mask_prob")(logits)
    return keras.Model(image, prob, name="segmenter")


def training_mixture(cfg: SegmenterConfig) -> dict[str, float]:
    """The run's occlusion mixture as trained: ``irregular`` only with a mask folder.

    Raises:
        ValueError: the mixture names a held-out generator (kept for evaluation only).
    """
    from tfface.data.occlusion import HELD_OUT

    mix = dict(cfg.occlusions)
    held = sorted(HELD_OUT & set(mix))
    if held:
        raise ValueError(f"the segmenter's training mixture names held-out generator(s) "
                         f"{held}: they are kept for evaluation only")
    if not cfg.mask_dir:
        mix.pop("irregular", None)
    return mix


def segmenter_loss(y, p, far_weight: float = 0.0, far_margin: int = 2):
    """Binary cross-entropy + Dice of the probability ``p`` against the mask ``y``.

    With ``far_weight > 0`` the cross-entropy of every pixel farther than ``far_margin``
    pixels from the true hole (outside the hole grown by a square of that radius) counts
    ``1 + far_weight`` times: a false hole on the cheek beside a mask, which restore
    would repaint, costs more than a pixel of doubt at the hole's edge.
    """
    p = tf.clip_by_value(p, 1e-6, 1.0 - 1e-6)
    neg = -(1.0 - y) * tf.math.log(1.0 - p)
    if far_weight > 0.0:
        k = 2 * int(far_margin) + 1
        near = tf.nn.max_pool2d(y, k, 1, "SAME") if far_margin > 0 else y
        neg = neg * (1.0 + far_weight * (1.0 - near))
    bce = tf.reduce_mean(-y * tf.math.log(p) + neg)
    inter = tf.reduce_sum(y * p, axis=[1, 2, 3])
    total = tf.reduce_sum(y, [1, 2, 3]) + tf.reduce_sum(p, [1, 2, 3])
    dice = 1.0 - (2.0 * inter + 1.0) / (total + 1.0)
    return bce + tf.reduce_mean(dice)


def init_from_tflite(model: keras.Model, path: str, calib: np.ndarray) -> float:
    """Load a converted segmenter's weights (``.tflite``, float32 or float16 weights) into
    ``model`` (a :func:`build_segmenter` of the same widths, at the file's input size or
    another: the convolutions fit any); returns the largest difference of the two models'
    probabilities on ``calib`` (shrunk to the file's size when the model's differs).

    The converter folded each batch norm into its convolution (kernel scaled, a bias
    added). Read back, a convolution gets the folded kernel and its batch norm is set
    so that it adds the folded bias in inference *and*, for the batch statistics of
    ``calib`` (``[B, S, S, 3]`` in [-1, 1], training inputs), in training mode: moving
    mean ``m`` and variance ``v`` of the folded convolution's output, ``gamma =
    sqrt(v + eps)``, ``beta = bias + m``. Fine-tuning then starts from the file's
    function, not from a network whose batch statistics renormalize every layer.

    Raises:
        ValueError: the file is no segmenter of these widths (the message says which
            layer does not fit).
    """
    import re

    from ai_edge_litert.interpreter import Interpreter

    if not os.path.isfile(path) or not has_tflite_header(path):
        raise ValueError(f"--init-from {path}: not a run folder nor a .tflite file")
    interp = Interpreter(model_path=path, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    i0 = interp.get_input_details()[0]
    if i0["dtype"] != np.float32:
        raise ValueError(f"--init-from {path}: the weights are read from a float-input file "
                         "(segmenter_fp16.tflite)")
    interp.set_tensor(i0["index"], np.zeros(i0["shape"], np.float32))
    interp.invoke()
    details = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    # float16 weights are constants behind a DEQUANTIZE op: read the constant itself
    dequant = {op["outputs"][0]: op["inputs"][0] for op in ops if op["op_name"] == "DEQUANTIZE"}

    def const(i):
        i = dequant.get(i, i)
        if np.issubdtype(details[i]["dtype"], np.integer):
            raise ValueError(f"--init-from {path}: int8 weights; use segmenter_fp16.tflite")
        return np.asarray(interp.get_tensor(i), np.float32)

    found = {}
    for op in ops:
        if op["op_name"] != "CONV_2D":
            continue
        w_i, b_i = op["inputs"][1], op["inputs"][2]
        m = re.search(r"(seg_(?:down|up)\d+_conv\d+|seg_logits)", details[w_i]["name"])
        if m is None:
            raise ValueError(f"--init-from {path}: convolution {details[w_i]['name']} is not "
                             "a segmenter layer")
        b = const(b_i) if b_i >= 0 else None
        found[m.group(1)] = (np.transpose(const(w_i), (1, 2, 3, 0)), b)  # OHWI -> HWIO
    convs = [ly for ly in model.layers if isinstance(ly, keras.layers.Conv2D)]
    if set(found) != {ly.name for ly in convs}:
        raise ValueError(f"--init-from {path}: its layers {sorted(found)} are not this "
                         f"model's {sorted(ly.name for ly in convs)}")
    for conv in convs:
        w, b = found[conv.name]
        want = tuple(conv.kernel.shape)
        if w.shape != want:
            raise ValueError(f"--init-from {path}: {conv.name} is {w.shape}, the model's "
                             f"{want} (other --filters?)")
        if conv.use_bias:
            conv.set_weights([w, b])
            continue
        conv.set_weights([w])
        bn = model.get_layer(conv.name.replace("_conv", "_bn"))
        bn.set_weights([np.ones_like(b), b, np.zeros_like(b), np.full_like(b, 1 - bn.epsilon)])
    # batch statistics of the folded convolutions (exact in inference mode now)
    bns = [model.get_layer(c.name.replace("_conv", "_bn")) for c in convs if not c.use_bias]
    probe = keras.Model(model.input, [model.get_layer(b.name.replace("_bn", "_conv")).output
                                      for b in bns])
    outs = probe(calib, training=False)
    before = model(calib, training=False).numpy()
    for bn, y in zip(bns, outs):
        y = y.numpy().reshape(-1, y.shape[-1])
        mean, var = y.mean(0), y.var(0)
        bias = bn.get_weights()[1]
        bn.set_weights([np.sqrt(var + bn.epsilon), bias + mean, mean, var])
    after = model(calib, training=False).numpy()
    moved = float(np.abs(before - after).max())
    side = int(i0["shape"][1])
    if calib.shape[1] != side:
        # a model of another input size (its convolutions fit any): compare the read-back
        # weights in a twin built at the file's size, on the inputs shrunk to it
        widths = [int(c.filters) for c in convs if re.fullmatch(r"seg_down\d+_conv1", c.name)]
        twin = build_segmenter(side, widths)
        twin.set_weights(model.get_weights())
        calib = tf.image.resize(calib, (side, side), method="area").numpy()
        after = twin(calib, training=False).numpy()
    ref = []
    for x in calib:
        interp.set_tensor(i0["index"], x[None].astype(np.float32))
        interp.invoke()
        ref.append(interp.get_tensor(interp.get_output_details()[0]["index"])[0])
    diff = float(np.abs(after - np.stack(ref)).max())
    logger.info("tflite weights read back: max probability difference %.2g (before the "
                "batch statistics %.2g)", diff, moved)
    return diff


def load_segmenter(workdir: str) -> tuple[keras.Model, SegmenterConfig]:
    """Rebuild the segmenter of a run folder and load its latest weights."""
    with open(os.path.join(workdir, "segmenter.json")) as f:
        raw = json.load(f)
    known = {k: raw[k] for k in SegmenterConfig.__dataclass_fields__ if k in raw}
    if "occlusions" not in known:  # written before the mixture was saved: the first one
        known["occlusions"] = dict(SEGMENTER_MIXTURE_V1)
        known.setdefault("photo_conditions", 0.0)
    cfg = SegmenterConfig(**known)
    model = build_segmenter(int(cfg.image_size), [int(v) for v in cfg.filters])
    model.load_weights(os.path.join(workdir, "segmenter.weights.h5"))
    return model, cfg
