"""Face unmasking: occluder segmentation + gated-convolution inpainting (Ha et al.; Din et al.).

One deployed graph with one input, the damaged face ``occluded``, and one output,
``restored``; no user mask is needed:

1. **Segmentation** (stage 1): a U-Net (Conv 3×3 → BN → ReLU twice per level, max
   pooling down, nearest upsampling + concatenation up) predicts the probability that
   a pixel belongs to the occluder (``mask_prob``; trained with the Dice loss). A
   parameter-free :class:`HardMask` turns it into a 0/1 mask (straight-through
   gradient in training).
2. **Coarse** (stage 2a): a gated-convolution encoder–decoder (:func:`gated_conv`:
   feature conv × sigmoid(gate conv)) with dilated gated blocks in the middle for
   context, fed the face with the predicted hole erased and the mask; output
   ``coarse``.
3. **Refine** (stage 2b): the same network (Ha et al. use the coarse structure for
   the refinement too) fed the coarse result with every pixel outside the predicted
   hole restored from the input; output ``refined``.
4. The output ``restored`` takes the refined pixels inside the predicted hole and the
   input's pixels everywhere else (:class:`Composite`).

Training (:class:`tfface.train.unmask.UnmaskTrainer`): Dice on ``mask_prob``, L1 on
``coarse`` and ``refined``, the SN-PatchGAN hinge loss on ``restored`` (a spectrally
normalized patch discriminator judging (image, damaged input) pairs) and an optional
perceptual term through the VGG content path (``train.content_weight``).

The small presets use ReLU6 feature activations and the ``clip`` head so the full-int8
file stays faithful; ``paper`` uses ELU (DeepFill v2) and ``tanh``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfface import keras
from tfface.models.family import INPUT, Family
from tfface.models.layers import BN_MOMENTUM, NearestUpsample, output_head
from tfface.models.layers import activation as _activation  # `activation` names an argument

STAGES = ("mask_prob", "coarse", "refined", "restored")
"""Names of the stage outputs (layers of the generator) the trainer reads."""

_DEFAULT_PARAMS: dict[str, Any] = {
    "seg_filters": [32, 64, 128, 256],
    "gen_filters": 32,
    "dilations": [2, 4, 8, 16],
    "activation": "elu",
    "output_head": "tanh",
    "disc_filters": [64, 128, 256, 256, 256, 256],
    # ``gated`` (DeepFill v2) or ``imputed`` (Hukkelås et al.; the unmasking paper's
    # headline): see :func:`imputed_conv`. The fallback stays ``gated``, what every run
    # before this key had; the presets choose ``imputed`` (better at the same budget with
    # 45 % fewer parameters, see docs/model_families.md).
    "conv": "gated",
}

_UNMASK_TRAIN = {
    "g_lr": 1e-4, "d_lr": 1e-4, "beta_1": 0.5, "pixel_loss": "l1", "pixel_weight": 1.0,
    "coarse_weight": 1.0, "mask_weight": 1.0, "adv_weight": 0.1, "label_smoothing": 0.0,
}

_FACEMASKS = {"facemask": 0.6, "sunglasses": 0.2, "strokes_medium": 0.1, "eye_bar": 0.1}

PRESETS: dict[str, dict[str, Any]] = {
    # Ha et al.: 256 px CelebA-HQ with MaskTheFace masks; VGG-19 perceptual term.
    "paper": {
        "model": {"params": dict(_DEFAULT_PARAMS, conv="imputed")},
        "data": {"image_size": 256, "task": "inpaint", "occlusions": dict(_FACEMASKS)},
        "train": {**_UNMASK_TRAIN, "batch_size": 16, "epochs": 7, "content_loss": "vgg54",
                  "content_weight": 0.05},
    },
    # Minutes on a laptop CPU (no VGG19 file needed: no perceptual term).
    "demo": {
        "model": {"params": dict(_DEFAULT_PARAMS, conv="imputed", seg_filters=[16, 32, 64],
                                 gen_filters=16,
                                 dilations=[2, 4, 8], activation="relu6",
                                 output_head="clip", disc_filters=[16, 32, 64, 64])},
        "data": {"image_size": 64, "task": "inpaint", "eval_count": 64,
                 "occlusions": dict(_FACEMASKS)},
        "train": {**_UNMASK_TRAIN, "batch_size": 16, "epochs": 6, "steps_per_epoch": 150,
                  "adv_weight": 0.01, "g_lr": 1e-3, "save_every_steps": 150},
    },
    # Seconds: tests and smoke runs; the perceptual term runs through the content path
    # with the tiny random-weight extractor.
    "tiny": {
        "model": {"params": dict(_DEFAULT_PARAMS, conv="imputed", seg_filters=[8, 16],
                                 gen_filters=8,
                                 dilations=[2], activation="relu6", output_head="clip",
                                 disc_filters=[8, 16])},
        "data": {"image_size": 32, "task": "inpaint", "eval_count": 8,
                 "occlusions": dict(_FACEMASKS)},
        "train": {**_UNMASK_TRAIN, "batch_size": 4, "epochs": 2, "steps_per_epoch": 5,
                  "adv_weight": 0.01, "content_loss": "vgg54",
                  "content_extractor": "tiny-random", "content_weight": 0.1,
                  "save_every_steps": 5},
    },
}


# -- layers -------------------------------------------------------------------------

@keras.utils.register_keras_serializable(package="tfface")
class HardMask(keras.layers.Layer):
    """Probability → 0/1 mask (1 where ``p > 0.5``); straight-through gradient in training.

    ``GREATER`` + ``CAST``: the full-int8 file compares the quantized probability with
    0.5 exactly (measured on a trained 64 px model: 0.03 % of the pixels flip against
    Keras). A steep clip such as ``clip((p - 0.5) · 10⁴, 0, 1)`` does not survive
    calibration: its 10⁴-wide intermediate range rounded the mask to all zeros. In
    training the forward value is the same and the gradient passes to ``p``
    unchanged, so the segmentation also learns from the restoration losses.
    """

    def call(self, p, training=None):
        p = tf.cast(p, tf.float32)
        hard = tf.cast(p > 0.5, tf.float32)
        if training:
            return p + tf.stop_gradient(hard - p)
        return hard

    def get_config(self):
        return super().get_config()


@keras.utils.register_keras_serializable(package="tfface")
class Composite(keras.layers.Layer):
    """``[base, fill, mask]`` → ``base`` outside the hole, ``fill`` inside (mask 1 = hole)."""

    def call(self, inputs):
        base, fill, mask = (tf.cast(t, tf.float32) for t in inputs)
        return base + mask * (fill - base)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[0])

    def get_config(self):
        return super().get_config()


@keras.utils.register_keras_serializable(package="tfface")
class KnownPixels(keras.layers.Layer):
    """``[image, mask]`` → the image with the hole erased (set to 0, mid-grey)."""

    def call(self, inputs):
        image, mask = (tf.cast(t, tf.float32) for t in inputs)
        return image * (1.0 - mask)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[0])

    def get_config(self):
        return super().get_config()


def gated_conv(x, filters: int, kernel: int, name: str, *, strides: int = 1,
               dilation: int = 1, activation: str = "elu"):
    """Gated convolution (Yu et al., DeepFill v2): ``act(conv_f(x)) · sigmoid(conv_g(x))``.

    The gate is a second convolution of the same shape whose sigmoid learns, per
    channel and pixel, how much of the feature to let through (a learned, soft
    version of the partial convolution's validity mask). Built from plain Keras layers
    (``{name}_feature``, ``{name}_gate``, ``{name}_sigmoid``, ``{name}``), so the graph
    stays flat and serializable and converts to CONV_2D / LOGISTIC / MUL.
    """
    kw = dict(strides=strides, padding="same", dilation_rate=dilation)
    f = keras.layers.Conv2D(filters, kernel, name=f"{name}_feature", **kw)(x)
    g = keras.layers.Conv2D(filters, kernel, name=f"{name}_gate", **kw)(x)
    f = _activation(activation, f"{name}_act", ("relu6", "elu", "lrelu"))(f)
    g = keras.layers.Activation("sigmoid", name=f"{name}_sigmoid")(g)
    return keras.layers.Multiply(name=name)([f, g])


@keras.utils.register_keras_serializable(package="tfface")
class Impute(keras.layers.Layer):
    """``[x, c]`` → ``c · x + (1 − c) · mean3×3(x)``: where the certainty ``c`` (one
    channel, broadcast over the features) is low, a feature is replaced by the mean of its
    3×3 neighbourhood, so that, layer after layer, values spread into the hole from its
    surroundings. The mean has no division (the average of ``c · x`` over the average of
    ``c`` would need DIV, which full-int8 TFLite lacks); converts to AVERAGE_POOL_2D,
    SUB, MUL, ADD."""

    def call(self, inputs):
        x, c = inputs
        mean = tf.nn.avg_pool2d(x, 3, 1, "SAME")
        return mean + c * (x - mean)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[0])

    def get_config(self):
        return super().get_config()


@keras.utils.register_keras_serializable(package="tfface")
class Certainty(keras.layers.Layer):
    """Hole mask (1 = hole) → certainty ``1 − mask`` (1 = a known pixel)."""

    def call(self, mask):
        return 1.0 - tf.cast(mask, tf.float32)

    def get_config(self):
        return super().get_config()


def imputed_conv(x, c, filters: int, kernel: int, name: str, *, strides: int = 1,
                 dilation: int = 1, activation: str = "elu"):
    """Imputed convolution (Hukkelås et al., "learnable feature imputation", used by the
    unmasking paper): ``act(conv(c·x + (1−c)·mean3×3(x)))``, and the next certainty
    ``sigmoid(conv_c(c))``, a learned one-channel convolution of the same kernel, stride
    and dilation. The feature is imputed explicitly before every convolution; the cost
    over a plain convolution is one ``kernel² + 1``-parameter certainty convolution per
    layer, where a gated convolution doubles the parameters. Returns ``(features,
    certainty)``; layers ``{name}_impute``, ``{name}_feature``, ``{name}`` and
    ``{name}_certainty``."""
    kw = dict(strides=strides, padding="same", dilation_rate=dilation)
    xi = Impute(name=f"{name}_impute")([x, c])
    f = keras.layers.Conv2D(filters, kernel, name=f"{name}_feature", **kw)(xi)
    f = _activation(activation, name, ("relu6", "elu", "lrelu"))(f)
    c = keras.layers.Conv2D(1, kernel, activation="sigmoid", name=f"{name}_certainty",
                            **kw)(c)
    return f, c


def _inpaint_net(x, c, base: int, dilations, activation: str, prefix: str, conv: str):
    """Encoder–decoder of gated or imputed convolutions (``conv``): two stride-2 levels,
    dilated blocks, two ×2 ups. ``c`` is the certainty of the input pixels (used by
    ``imputed`` only)."""
    a = activation

    def layer(x, c, filters, kernel, name, **kw):
        if conv == "imputed":
            return imputed_conv(x, c, filters, kernel, name, activation=a, **kw)
        return gated_conv(x, filters, kernel, name, activation=a, **kw), c

    def up(x, c, name):
        x = NearestUpsample(2, name=name)(x)
        if conv == "imputed":
            c = NearestUpsample(2, name=f"{name}_certainty")(c)
        return x, c

    x, c = layer(x, c, base, 5, f"{prefix}_g1")
    x, c = layer(x, c, 2 * base, 3, f"{prefix}_g2", strides=2)
    x, c = layer(x, c, 2 * base, 3, f"{prefix}_g3")
    x, c = layer(x, c, 4 * base, 3, f"{prefix}_g4", strides=2)
    x, c = layer(x, c, 4 * base, 3, f"{prefix}_g5")
    for i, r in enumerate(dilations):
        x, c = layer(x, c, 4 * base, 3, f"{prefix}_dil{i}", dilation=int(r))
    x, c = layer(x, c, 4 * base, 3, f"{prefix}_g6")
    x, c = up(x, c, f"{prefix}_up1")
    x, c = layer(x, c, 2 * base, 3, f"{prefix}_g7")
    x, c = layer(x, c, 2 * base, 3, f"{prefix}_g8")
    x, c = up(x, c, f"{prefix}_up2")
    x, c = layer(x, c, base, 3, f"{prefix}_g9")
    x, c = layer(x, c, max(1, base // 2), 3, f"{prefix}_g10")
    return keras.layers.Conv2D(3, 3, padding="same", name=f"{prefix}_rgb")(x)


def _seg_unet(x, filters):
    """Occluder segmentation U-Net → logits ``[B, S, S, 1]``."""
    skips = []
    for i, f in enumerate(filters):
        if i:
            x = keras.layers.MaxPooling2D(2, name=f"seg_pool{i}")(x)
        for k in (1, 2):
            x = keras.layers.Conv2D(f, 3, padding="same", use_bias=False,
                                    name=f"seg_down{i}_conv{k}")(x)
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM,
                                                name=f"seg_down{i}_bn{k}")(x)
            x = keras.layers.ReLU(name=f"seg_down{i}_relu{k}")(x)
        skips.append(x)
    for j, (f, skip) in enumerate(zip(reversed(filters[:-1]), reversed(skips[:-1]))):
        x = NearestUpsample(2, name=f"seg_up{j}")(x)
        x = keras.layers.Concatenate(name=f"seg_up{j}_concat")([x, skip])
        for k in (1, 2):
            x = keras.layers.Conv2D(f, 3, padding="same", use_bias=False,
                                    name=f"seg_up{j}_conv{k}")(x)
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM,
                                                name=f"seg_up{j}_bn{k}")(x)
            x = keras.layers.ReLU(name=f"seg_up{j}_relu{k}")(x)
    return keras.layers.Conv2D(1, 1, name="seg_logits")(x)


def build_generator(cfg) -> keras.Model:
    """Damaged face in [-1, 1] → restored face in [-1, 1] (no mask input)."""
    p = FAMILY.params(cfg)
    size = cfg.data.image_size
    seg = [int(f) for f in p["seg_filters"]]
    if size % 4 or size % (2 ** (len(seg) - 1)):
        raise ValueError(f"unmask needs image_size divisible by 4 and by "
                         f"{2 ** (len(seg) - 1)} (segmentation levels), got {size}")
    image = keras.Input((size, size, 3), name="occluded")
    logits = _seg_unet(image, seg)
    prob = keras.layers.Activation("sigmoid", dtype="float32", name="mask_prob")(logits)
    mask = HardMask(name="mask_hard", dtype="float32")(prob)
    base, dil, act, conv = int(p["gen_filters"]), p["dilations"], p["activation"], p["conv"]
    # The certainty of the imputed convolutions starts as "known pixel" (gated: unused).
    known = Certainty(name="certainty")(mask) if conv == "imputed" else None
    x = keras.layers.Concatenate(name="coarse_in")(
        [KnownPixels(name="known_pixels")([image, mask]), mask])
    coarse = output_head(_inpaint_net(x, known, base, dil, act, "coarse", conv),
                         p["output_head"], "coarse")
    x = Composite(name="refine_base")([image, coarse, mask])
    x = keras.layers.Concatenate(name="refine_in")([x, mask])
    refined = output_head(_inpaint_net(x, known, base, dil, act, "refine", conv),
                          p["output_head"], "refined")
    out = Composite(name="restored", dtype="float32")([image, refined, mask])
    return keras.Model(image, out, name="unmask")


def stage_model(gen: keras.Model) -> keras.Model:
    """A view of ``gen`` (shared layers) returning ``[mask_prob, coarse, refined, restored]``."""
    return keras.Model(gen.inputs, [gen.get_layer(n).output for n in STAGES],
                       name=f"{gen.name}_stages")


def build_discriminator(cfg) -> keras.Model:
    """SN-PatchGAN: spectrally normalized Conv 5×5 stride 2 + LeakyReLU stack judging
    (image, damaged input) pairs; one logit per patch (hinge loss)."""
    p = FAMILY.params(cfg)
    size = cfg.data.image_size
    img = keras.Input((size, size, 3), name="image")
    cond = keras.Input((size, size, 3), name="condition")
    x = keras.layers.Concatenate(name="sn_concat")([img, cond])
    sn = keras.layers.SpectralNormalization
    for i, f in enumerate(p["disc_filters"]):
        x = sn(keras.layers.Conv2D(int(f), 5, strides=2, padding="same"),
               name=f"sn_conv{i}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"sn_lrelu{i}")(x)
    logits = sn(keras.layers.Conv2D(1, 3, padding="same", dtype="float32"),
                name="sn_logits")(x)
    return keras.Model([img, cond], logits, name="sn_patchgan")


def int8_keep_float(cfg) -> list[str]:
    """Layers a full-int8 export keeps in float: the 0/1 mask (``GREATER`` + ``CAST``)
    and the layers that compose with it (in int8 a composite rounds the kept pixels,
    so the output would no longer equal the input outside the mask). Every
    convolution, imputation and certainty op stays int8."""
    names = ["mask_hard", "known_pixels", "coarse_in", "refine_base", "refine_in", "restored"]
    if FAMILY.params(cfg)["conv"] == "imputed":
        names.insert(2, "certainty")
    return names


FAMILY = Family(
    name="unmask", task="inpaint", presets=PRESETS, default_preset="paper",
    default_params=_DEFAULT_PARAMS, build_generator=build_generator,
    build_discriminator=build_discriminator, disc_condition=INPUT, regime="unmask",
    int8_keep_float=int8_keep_float,
)
