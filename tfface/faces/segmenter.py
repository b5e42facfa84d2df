"""Occluder segmenter: the ``unmask`` family's segmentation U-Net on its own.

An inpainting model such as the shipped V-Net needs the hole mask (1 = occluder). A
person restoring a photo should not have to draw it, so restore runs this small U-Net on
each aligned face crop and takes ``mask_prob > 0.5`` as the hole.

The network is :func:`tfface.models.unmask._seg_unet` (Conv 3x3 → BN → ReLU twice per
level, max pooling down, nearest upsampling + concatenation up) with a sigmoid head
named ``mask_prob``. It is trained here on real faces (a folder of aligned crops, e.g.
faces-train) damaged by the project's occlusion synthesis (face masks, sunglasses, eye
bars, boxes/noise patches as object-like occluders, irregular holes), with a small
random similarity jitter applied to the face and its mask alike (restore's crops are
aligned by detected landmarks, never perfectly) and a share of undamaged faces (the
mask must then be empty). Loss: binary cross-entropy + Dice.

:func:`train_segmenter` checkpoints every ``save_every`` steps and resumes from the
last checkpoint; it stops after ``steps`` or ``max_minutes``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

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


def mask_scores(target, prob) -> tuple[np.ndarray, np.ndarray]:
    """Per-image pixel accuracy and IoU of ``prob > 0.5`` against ``target > 0.5``
    (IoU is 1 for an image where both masks are empty)."""
    pred = np.asarray(prob) > 0.5
    true = np.asarray(target) > 0.5
    axes = tuple(range(1, pred.ndim))
    acc = (pred == true).mean(axis=axes)
    inter = (pred & true).sum(axis=axes)
    union = (pred | true).sum(axis=axes)
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return acc, iou


def _data_cfg(cfg: SegmenterConfig, data_dir: str, mixture: dict[str, float]):
    from tfface.config import Config

    c = Config()
    c.data.source = "folder"
    c.data.data_dir = data_dir
    c.data.image_size = int(cfg.image_size)
    c.data.task = "inpaint"
    c.data.occlusions = dict(mixture)
    c.data.eval_occlusions = dict(mixture)
    c.data.mask_dir = cfg.mask_dir
    c.data.facemask_dir = cfg.facemask_dir
    # Object-like occluders: flat-coloured boxes (a hand, a phone, a cup) as well as
    # the noise-filled CelebA-C patches.
    c.data.occlusion_options = {"boxes": {"fill": "solid"}}
    if cfg.facemask_dir:
        # Half photographed templates, half procedural masks (pleated, cloth, N95):
        # with templates only, a drawn pleated mask was not recognised as one.
        c.data.occlusion_options["facemask"] = {"template_proba": 0.5}
        if any(n in cfg.occlusions for n in ("realmask", "scarf", "hair")):
            # A photo-like run: 'facemask' draws only the training families' frontal
            # templates too, so realmask_unseen's (KN95, cloth) stay unseen.
            from tfface.data.occlusion import available_templates, split_templates

            train, _ = split_templates(available_templates(cfg.facemask_dir))
            c.data.occlusion_options["facemask"]["templates"] = [
                n for n in train if not n.endswith(("_left", "_right"))]
    c.data.seed = int(cfg.seed)
    c.data.min_image_side = 32
    c.train.batch_size = int(cfg.batch_size)
    return c


def _mixture(cfg: SegmenterConfig) -> dict[str, float]:
    from tfface.data.occlusion import HELD_OUT

    mix = dict(cfg.occlusions)
    held = sorted(HELD_OUT & set(mix))
    if held:
        raise ValueError(f"the segmenter's training mixture names held-out generator(s) "
                         f"{held}: they are kept for evaluation only")
    if not cfg.mask_dir:
        mix.pop("irregular", None)
    return mix


def _jitter(images, masks, seed, cfg: SegmenterConfig):
    """The same random similarity transform on each face and its mask (batch-wise)."""
    b = tf.shape(images)[0]
    s = float(cfg.image_size)
    u = tf.random.stateless_uniform([b, 4], seed, -1.0, 1.0)
    ang = u[:, 0] * math.radians(cfg.jitter_degrees)
    sc = 1.0 + u[:, 1] * cfg.jitter_scale
    tx, ty = u[:, 2] * cfg.jitter_shift * s, u[:, 3] * cfg.jitter_shift * s
    c = s / 2.0
    # Output pixel p samples input at A p + t (inverse map), a rotation/scale about the center.
    a0, a1 = tf.cos(ang) / sc, -tf.sin(ang) / sc
    b0, b1 = tf.sin(ang) / sc, tf.cos(ang) / sc
    t0 = c - a0 * c - a1 * c + tx
    t1 = c - b0 * c - b1 * c + ty
    zeros = tf.zeros_like(a0)
    tr = tf.stack([a0, a1, t0, b0, b1, t1, zeros, zeros], axis=1)
    shape = tf.shape(images)[1:3]
    img = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=tr, output_shape=shape, interpolation="BILINEAR",
        fill_mode="REFLECT", fill_value=0.0)
    msk = tf.raw_ops.ImageProjectiveTransformV3(
        images=masks, transforms=tr, output_shape=shape, interpolation="NEAREST",
        fill_mode="REFLECT", fill_value=0.0)
    return img, msk


def _recolor_occluder(occluded, clean, cover, seed, p: float):
    """With chance ``p``: the occluder's pixels (``cover`` > 0.5) get another hue and
    brightness, so the segmenter learns shapes over the face, not the palette. ``occluded``
    and ``clean`` are float RGB in 0..255."""
    s_on, s_hue, s_gain = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    on = tf.random.stateless_uniform([], s_on) < p
    hue = tf.random.stateless_uniform([], s_hue, -0.5, 0.5)
    gain = tf.random.stateless_uniform([], s_gain, 0.6, 1.3)
    shifted = tf.clip_by_value(tf.image.adjust_hue(occluded / 255.0, hue) * 255.0 * gain, 0, 255)
    inside = cover > 0.5
    recolored = tf.where(inside, shifted, occluded)
    return tf.where(on, recolored, occluded)


def _photometric(img, seed, p: float):
    """Camera-like changes of a whole face in [-1, 1], each with chance ``p``: Gaussian
    blur (sigma 0.3–1.2 px), sensor noise (sigma up to 0.04), JPEG (quality 35–90),
    contrast and brightness."""
    s = tf.unstack(tf.random.experimental.stateless_split(seed, 9))

    def chance(k):
        return tf.random.stateless_uniform([], s[k]) < p

    def blur(x):
        sigma = tf.random.stateless_uniform([], s[1], 0.3, 1.2)
        t = tf.range(-2.0, 3.0)
        k = tf.exp(-0.5 * tf.square(t / sigma))
        k = k / tf.reduce_sum(k)
        k2 = (k[:, None] * k[None, :])[:, :, None, None] * tf.ones([1, 1, 3, 1])
        xp = tf.pad(x[None], [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")
        return tf.nn.depthwise_conv2d(xp, k2, [1, 1, 1, 1], "VALID")[0]

    x = tf.where(chance(0), blur(img), img)
    noise = tf.random.stateless_normal(tf.shape(x), s[3]) * \
        tf.random.stateless_uniform([], s[4], 0.0, 0.04)
    x = tf.where(chance(2), x + noise, x)
    x01 = tf.clip_by_value((x + 1.0) / 2.0, 0.0, 1.0)
    jpeg = tf.image.stateless_random_jpeg_quality(x01, 35, 90, tf.cast(s[6], tf.int32))
    x01 = tf.where(chance(5), jpeg, x01)
    c = tf.random.stateless_uniform([], s[8], 0.75, 1.25)
    mean = tf.reduce_mean(x01)
    shifted = tf.clip_by_value((x01 - mean) * c + mean + (c - 1.0) * 0.1, 0.0, 1.0)
    x01 = tf.where(chance(7), shifted, x01)
    return x01 * 2.0 - 1.0


def segmenter_dataset(cfg: SegmenterConfig, split: str = "train", *, start_step: int = 0,
                      data_dir: str | None = None, augment: bool | None = None,
                      mixture: dict[str, float] | None = None):
    """``(occluded [-1, 1], mask {0, 1})`` batches from the folder's faces.

    Occluders are placed at the landmarks of the measured template
    (:data:`tfface.faces.align.TEMPLATE`, the framing of these very crops), jittered per
    face by a few percent of the side; the folder source's own landmarks are those of
    CelebA's 178x218 aligned images, a framing these photos do not have (their eyes sit
    at y = 0.43 of the square, not 0.51).

    ``split="train"`` is infinite, with the similarity jitter and clean faces;
    ``"eval"`` is the folder source's fixed eval split (no augmentation unless
    ``augment``). ``mixture`` replaces :data:`SEGMENTER_MIXTURE` (e.g. one occluder
    for a per-occluder evaluation).
    """
    from tfface.data import occlusion as occ
    from tfface.data.pipeline import element_seed
    from tfface.data.sources import make_source
    from tfface.faces.align import TEMPLATE

    render = max(int(cfg.render_scale), 1)
    dcfg = _data_cfg(cfg, data_dir or cfg.data_dir, mixture or _mixture(cfg))
    d = dcfg.data
    size = int(d.image_size)
    d.image_size = size * render
    rsize = size * render
    mixture = occ.check_mixture(dict(d.occlusions))
    occluders = occ.make_occlusion_fns(d, names=list(mixture))
    template = tf.constant(np.asarray(TEMPLATE, np.float32))
    batch = int(cfg.batch_size)
    start = start_step * batch if split == "train" else 0
    augment = split == "train" if augment is None else augment

    def shrink(x):
        if render == 1:
            return x
        return tf.image.resize(x, [size, size], method="area")

    def synth(el):
        image = tf.ensure_shape(el["image"], [rsize, rsize, 3])
        index = tf.cast(el["index"], tf.int64)
        seed = element_seed(d.seed, split, index)
        s_lm, s_occ, s_aug, s_clean, s_ph = tf.unstack(
            tf.random.experimental.stateless_split(seed, 5))
        lm = template + tf.random.stateless_normal([5, 2], s_lm, stddev=0.012)
        out = occ.occlude(image, lm, s_occ, mixture, occluders)
        occluded = tf.cast(out["occluded"], tf.float32)
        cover = out["mask"]
        base = tf.cast(image, tf.float32)
        if augment:
            occluded = _recolor_occluder(occluded, base, cover, s_ph, cfg.photometric)
            if cfg.photo_conditions > 0:
                proba = [min(1.0, p * float(cfg.photo_conditions))
                         for p in occ.PHOTO_CONDITION_PROBA]
                (occluded, base), _ = occ.photo_conditions(
                    tf.random.experimental.stateless_fold_in(s_ph, 2), [occluded, base], proba)
        img = shrink(occluded) / 127.5 - 1.0
        msk = tf.cast(shrink(cover) > 0.5, tf.float32)
        if augment:
            img, msk = _jitter(img[None], msk[None], s_aug, cfg)
            clean = shrink(base) / 127.5 - 1.0
            clean, _ = _jitter(clean[None], msk, s_aug, cfg)
            keep = tf.random.stateless_uniform([], s_clean) < cfg.clean_fraction
            img = tf.where(keep, clean, img)[0]
            msk = tf.where(keep, tf.zeros_like(msk), msk)[0]
            img = _photometric(img, tf.random.experimental.stateless_fold_in(s_ph, 1),
                               cfg.photometric)
        return img, msk

    ds = make_source(d).dataset(split, start=start)
    ds = ds.map(synth, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch, drop_remainder=split == "train")
    return ds.prefetch(2)


def _loss(y, p):
    p = tf.clip_by_value(p, 1e-6, 1.0 - 1e-6)
    bce = -tf.reduce_mean(y * tf.math.log(p) + (1.0 - y) * tf.math.log(1.0 - p))
    inter = tf.reduce_sum(y * p, axis=[1, 2, 3])
    total = tf.reduce_sum(y, [1, 2, 3]) + tf.reduce_sum(p, [1, 2, 3])
    dice = 1.0 - (2.0 * inter + 1.0) / (total + 1.0)
    return bce + tf.reduce_mean(dice)


def train_segmenter(cfg: SegmenterConfig, workdir: str, *, max_minutes: float | None = None,
                    log_every: int = 50) -> dict[str, Any]:
    """Train (or resume) a segmenter in ``workdir``; returns the last logged figures.

    Writes ``segmenter.json`` (the config), ``ckpt/`` (model + optimizer + step),
    ``segmenter.weights.h5`` (the latest weights) and ``train_log.jsonl``.
    """
    from tfface.fileio import atomic_write

    # bad settings: one clear error before anything is written or built
    if cfg.lr_warmup < 0 or cfg.photo_conditions < 0:
        raise ValueError(f"--lr-warmup and --photo-conditions must be >= 0, got "
                         f"{cfg.lr_warmup} and {cfg.photo_conditions}")
    _mixture(cfg)  # a held-out generator in the mixture
    os.makedirs(workdir, exist_ok=True)
    atomic_write(os.path.join(workdir, "segmenter.json"), json.dumps(asdict(cfg), indent=2))
    model = build_segmenter(cfg.image_size, cfg.filters)
    if cfg.lr_warmup > 0:
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, max(cfg.steps - cfg.lr_warmup, 1), alpha=0.05, warmup_target=cfg.lr,
            warmup_steps=cfg.lr_warmup)
    else:
        schedule = keras.optimizers.schedules.CosineDecay(cfg.lr, cfg.steps, alpha=0.05)
    opt = keras.optimizers.Adam(schedule)
    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(model=model, opt=opt, step=step)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(workdir, "ckpt"), max_to_keep=2)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        logger.info("resumed at step %d", int(step))
    elif cfg.init_from:
        _init_weights(model, cfg)
    start = int(step)
    ds = segmenter_dataset(cfg, "train", start_step=start)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            loss = _loss(y, p)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        pred = tf.cast(p > 0.5, tf.float32)
        inter = tf.reduce_sum(pred * y)
        union = tf.reduce_sum(tf.maximum(pred, y))
        acc = tf.reduce_mean(tf.cast(tf.equal(pred, y), tf.float32))
        return loss, acc, inter / tf.maximum(union, 1.0)

    t0 = time.time()
    last: dict[str, Any] = {}
    sums = np.zeros(3)
    n = 0
    log_path = os.path.join(workdir, "train_log.jsonl")
    for x, y in ds:
        if int(step) >= cfg.steps:
            break
        loss, acc, iou = train_step(x, y)
        step.assign_add(1)
        sums += [float(loss), float(acc), float(iou)]
        n += 1
        s = int(step)
        if s % log_every == 0:
            last = {"step": s, "loss": sums[0] / n, "acc": sums[1] / n, "iou": sums[2] / n,
                    "minutes": (time.time() - t0) / 60.0}
            with open(log_path, "a") as f:
                f.write(json.dumps(last) + "\n")
            logger.info("%s", last)
            sums[:] = 0
            n = 0
        out_of_time = max_minutes is not None and (time.time() - t0) / 60.0 >= max_minutes
        if s % cfg.save_every == 0 or out_of_time or s >= cfg.steps:
            manager.save()
            model.save_weights(os.path.join(workdir, "segmenter.weights.h5"))
        if out_of_time:
            logger.info("stopping after %.1f minutes at step %d", max_minutes, s)
            break
    manager.save()
    model.save_weights(os.path.join(workdir, "segmenter.weights.h5"))
    return last


def _init_weights(model, cfg: SegmenterConfig) -> None:
    """A new run's starting weights: ``cfg.init_from`` (a run folder or a .tflite)."""
    src = cfg.init_from
    if os.path.isdir(src):
        other, ocfg = load_segmenter(src)
        if [int(f) for f in ocfg.filters] != [int(f) for f in cfg.filters]:
            raise ValueError(f"--init-from {src} has filters {ocfg.filters}, this run "
                             f"{cfg.filters}")
        model.set_weights(other.get_weights())
    else:
        calib = next(iter(segmenter_dataset(cfg, "train")))[0]
        init_from_tflite(model, src, calib.numpy())
    logger.info("weights initialised from %s", src)


def init_from_tflite(model: keras.Model, path: str, calib: np.ndarray) -> float:
    """Load a converted segmenter's weights (``.tflite``, float32 or float16 weights) into
    ``model`` (a :func:`build_segmenter` of the same widths); returns the largest
    difference of the two models' probabilities on ``calib``.

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
    ref = []
    for x in calib:
        interp.set_tensor(i0["index"], x[None].astype(np.float32))
        interp.invoke()
        ref.append(interp.get_tensor(interp.get_output_details()[0]["index"])[0])
    diff = float(np.abs(after - np.stack(ref)).max())
    logger.info("tflite weights read back: max probability difference %.2g (before the "
                "batch statistics %.2g)", diff, float(np.abs(before - after).max()))
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


# --------------------------------------------------------------------------- inference

class SegmenterError(ValueError):
    """The segmenter file cannot be used; the message says why."""


class OccluderSegmenter:
    """Finds the occluder in aligned face crops: ``hole(crop) -> bool [S, S]``.

    Loads a ``.tflite`` file (run with LiteRT; int8 or float inputs handled from the
    tensors' own quantization parameters) or a training folder of
    :func:`train_segmenter` (Keras). The crop is resized to the segmenter's side with
    an area filter and the probability back to the crop's side before the 0.5
    threshold.
    """

    FACE_SUPPORT = (0.5, 0.56, 0.42, 0.50)
    """Centre (x, y) and half-axes of the ellipse, in fractions of the aligned crop's
    side, outside which nothing is an occluder (the template's eyes are at y = 0.43,
    its mouth at 0.67, 0.225 of the side apart): the face, its chin and cheeks with a
    margin. Drawn face masks of the held-out families keep all of their pixels inside it
    (training families 99.7 %, hands and phones 97 %, scarves 93 %); what it cuts is
    background and hair beside the head, where a false hole smears the photo."""

    def __init__(self, path: str, threshold: float = 0.5, face_support: bool = True):
        self.path = path
        self.threshold = float(threshold)
        self.face_support = bool(face_support)
        self._support: dict[int, np.ndarray] = {}
        if os.path.isdir(path):
            try:
                model, cfg = load_segmenter(path)
            except (OSError, ValueError, KeyError) as e:
                raise SegmenterError(f"cannot load the segmenter folder {path}: {e}") from e
            self.size = int(cfg.image_size)
            self._run = lambda x: model(x, training=False).numpy()
            return
        if not os.path.isfile(path):
            raise SegmenterError(f"no such segmenter file: {path}")
        if not has_tflite_header(path):
            raise SegmenterError(f"{path} is not a .tflite file (no TFL3 identifier)")
        try:
            from ai_edge_litert.interpreter import Interpreter

            interp = Interpreter(model_path=path, num_threads=2)
            interp.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise SegmenterError(f"{path} cannot be loaded by the LiteRT interpreter "
                                 f"({detail})") from e
        ins, outs = interp.get_input_details(), interp.get_output_details()
        if len(ins) != 1 or len(outs) != 1 or len(ins[0]["shape"]) != 4 \
                or int(ins[0]["shape"][3]) != 3 or int(outs[0]["shape"][-1]) != 1:
            raise SegmenterError(f"{path} is not an occluder segmenter (one RGB image in, "
                                 "one 1-channel probability map out)")
        self.size = int(ins[0]["shape"][1])
        i, o = ins[0], outs[0]

        def run(x):
            if np.issubdtype(i["dtype"], np.integer):
                sc, zp = i["quantization"]
                info = np.iinfo(i["dtype"])
                x = np.clip(np.round(x / sc + zp), info.min, info.max).astype(i["dtype"])
            interp.set_tensor(i["index"], x.astype(i["dtype"]))
            interp.invoke()
            y = interp.get_tensor(o["index"])
            if np.issubdtype(y.dtype, np.integer):
                sc, zp = o["quantization"]
                y = (y.astype(np.float32) - zp) * sc
            return y

        self._run = run

    def probability(self, crop: np.ndarray) -> np.ndarray:
        """float32 ``[S, S]`` occluder probability of a uint8 RGB crop of side ``S``."""
        import cv2

        s = crop.shape[0]
        x = crop
        if s != self.size:
            x = cv2.resize(crop, (self.size, self.size),
                           interpolation=cv2.INTER_AREA if s > self.size else cv2.INTER_LINEAR)
        x = (x.astype(np.float32) / 127.5 - 1.0)[None]
        p = np.asarray(self._run(x), np.float32)[0, :, :, 0]
        if s != self.size:
            p = cv2.resize(p, (s, crop.shape[1]), interpolation=cv2.INTER_LINEAR)
        if self.face_support:
            p = p * self.support(s)
        return p

    def support(self, size: int) -> np.ndarray:
        """float32 ``[S, S]``: 1 inside :attr:`FACE_SUPPORT`, 0 outside."""
        if size not in self._support:
            cx, cy, rx, ry = self.FACE_SUPPORT
            yy, xx = (np.mgrid[:size, :size] + 0.5) / size
            self._support[size] = (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
                                   <= 1.0).astype(np.float32)
        return self._support[size]

    def hole(self, crop: np.ndarray) -> np.ndarray:
        """bool ``[S, S]``: True where the occluder is."""
        return self.probability(crop) > self.threshold
