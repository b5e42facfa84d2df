"""Improved WGAN face restoration with a global and a local critic (Liu et al.).

Generator: an encoder–decoder. The encoder is a stack of Conv 4×4 stride 2 blocks with
LeakyReLU(0.2) (BatchNorm on all but the first); the decoder mirrors it with
transposed Conv 4×4 stride 2 blocks with ReLU, and every encoder conv output is
concatenated to the decoder feature map of the same size (the paper's skip
connections from each encoder conv layer to the matching transposed-conv layer).
``bottleneck_dilations`` adds dilated 3×3 convolutions between the two halves for
context (as in the globally and locally consistent completion network the two-critic
design comes from); the paper does not give its exact bottleneck. A last transposed
convolution maps to RGB and an output head maps to [-1, 1]: ``tanh`` as in the paper
(``paper`` preset), or ``clip`` (:class:`~tfface.models.layers.ClipOutput`) with a
ReLU6 decoder for the small presets, which keeps full-int8 files faithful (a ``tanh``
head and unbounded decoder features lose int8 resolution, see the V-Net notes).

Critics (``build_discriminator``): one Keras model with inputs ``[image, mask]`` and
output ``[B, 2]``: column 0 is the global critic's score of the whole face, column 1
the local critic's score of a fixed-size crop (``local_size`` px) centred on the
bounding box of the hole (:class:`HoleCrop`; the crop is an exact pixel copy made
with gathers at the computed offsets, differentiable w.r.t. the image to second order,
so the gradient penalty sees the same function the critic computes). Both critics
are Conv 5×5 stride 2 + LeakyReLU stacks with a linear score (no BatchNorm: the
WGAN-GP penalty is per sample), trained with Wasserstein losses summed as in the
paper (L_D = L_global + L_local) plus a gradient penalty (WGAN-GP) for each critic;
see :class:`tfface.train.wgan.WGANTrainer`.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfface import keras
from tfface.models.family import MOBILE_DATA, MOBILE_INPUT, Family
from tfface.models.layers import (BN_MOMENTUM, MASK_INPUT_PARAMS, activation, inpaint_inputs,
                                  inpaint_model, inpaint_keep_float, small_init)

_DEFAULT_PARAMS: dict[str, Any] = {
    "filters": [64, 128, 256, 512],
    "bottleneck_dilations": [2, 4],
    "batch_norm": True,
    "decoder_activation": "relu",
    "output_head": "tanh",
    "critic_filters": [64, 128, 256, 512],
    "local_critic_filters": [64, 128, 256],
    "local_size": None,  # None: half the image side
    **MASK_INPUT_PARAMS,
}

_WGAN_TRAIN = {
    "g_lr": 1e-4, "d_lr": 1e-4, "beta_1": 0.5, "adv_weight": 1e-3, "pixel_weight": 1.0,
    "pixel_loss": "l1", "label_smoothing": 0.0, "n_critic": 5, "gp_weight": 10.0,
}

PRESETS: dict[str, dict[str, Any]] = {
    # Liu et al.: CelebA at 112 px with rectangle occlusions.
    "paper": {
        "model": {"params": dict(_DEFAULT_PARAMS)},
        "data": {"image_size": 112, "task": "inpaint", "occlusions": {"boxes": 1.0}},
        "train": {**_WGAN_TRAIN, "batch_size": 32, "epochs": 20},
    },
    # Minutes on a laptop CPU; ReLU6 decoder and clip head for full int8.
    "demo": {
        "model": {"params": dict(_DEFAULT_PARAMS, filters=[16, 32, 64, 128],
                                 decoder_activation="relu6", output_head="clip",
                                 critic_filters=[16, 32, 64], local_critic_filters=[16, 32])},
        "data": {"image_size": 64, "task": "inpaint", "eval_count": 64},
        "train": {**_WGAN_TRAIN, "batch_size": 16, "epochs": 6, "steps_per_epoch": 150,
                  "n_critic": 2, "save_every_steps": 150},
    },
    # The inpainting recipe of the shipped V-Net at 128 px (the mask as a second input,
    # a residual over the classical HoleFill) under the Liu et al. generator and the two
    # critics: docs/model_families.md compares the families with it at one budget
    # (pixel-loss twin: --set train.adv_weight=0).
    "mobile": {
        "model": {"params": dict(_DEFAULT_PARAMS, **MOBILE_INPUT, filters=[16, 32, 64, 128],
                                 decoder_activation="relu6", output_head="clip",
                                 critic_filters=[16, 32, 64], local_critic_filters=[16, 32])},
        "data": dict(MOBILE_DATA),
        "train": {**_WGAN_TRAIN, "batch_size": 16, "epochs": 10, "steps_per_epoch": 150,
                  "n_critic": 2, "save_every_steps": 150},
    },
    # Seconds: tests and smoke runs.
    "tiny": {
        "model": {"params": dict(_DEFAULT_PARAMS, filters=[8, 16, 32], bottleneck_dilations=[2],
                                 decoder_activation="relu6", output_head="clip",
                                 critic_filters=[8, 16], local_critic_filters=[8])},
        "data": {"image_size": 32, "task": "inpaint", "eval_count": 8},
        "train": {**_WGAN_TRAIN, "batch_size": 4, "epochs": 2, "steps_per_epoch": 5,
                  "n_critic": 2, "save_every_steps": 5},
    },
}


def local_size(cfg) -> int:
    """Side of the local critic's crop (``local_size`` or half the image)."""
    p = FAMILY.params(cfg)
    size = cfg.data.image_size
    n = int(p["local_size"] or size // 2)
    if not 8 <= n <= size:
        raise ValueError(f"local_size must be between 8 and image_size ({size}), got {n}")
    return n


def build_generator(cfg) -> keras.Model:
    """Encoder–decoder with skips: occluded face in [-1, 1] → restored face in [-1, 1]."""
    p = FAMILY.params(cfg)
    size = cfg.data.image_size
    filters = [int(f) for f in p["filters"]]
    if len(filters) < 2 or size % (2 ** len(filters)):
        raise ValueError(f"the wgan_gl generator with {len(filters)} levels needs image_size "
                         f"divisible by {2 ** len(filters)}, got {size}")
    inputs, x, base = inpaint_inputs(size, p, "wgan_gl")
    skips = []
    for i, f in enumerate(filters):
        norm = p["batch_norm"] and i > 0
        x = keras.layers.Conv2D(f, 4, strides=2, padding="same", use_bias=not norm,
                                name=f"enc{i}_conv")(x)
        if norm:
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"enc{i}_bn")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"enc{i}_lrelu")(x)
        skips.append(x)
    for j, rate in enumerate(p["bottleneck_dilations"] or []):
        x = keras.layers.Conv2D(filters[-1], 3, padding="same", dilation_rate=int(rate),
                                use_bias=not p["batch_norm"], name=f"mid{j}_conv")(x)
        if p["batch_norm"]:
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"mid{j}_bn")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"mid{j}_lrelu")(x)
    # Decoder: each transposed conv takes the previous output joined with the output
    # of the encoder conv at the same resolution.
    for j, (f, skip) in enumerate(zip(reversed(filters[:-1]), reversed(skips[1:]))):
        if j or p["bottleneck_dilations"]:  # (without a bottleneck x *is* that skip)
            x = keras.layers.Concatenate(name=f"dec{j}_skip")([x, skip])
        x = keras.layers.Conv2DTranspose(f, 4, strides=2, padding="same",
                                         use_bias=not p["batch_norm"], name=f"dec{j}_deconv")(x)
        if p["batch_norm"]:
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"dec{j}_bn")(x)
        x = activation(p["decoder_activation"], f"dec{j}_act", ("relu", "relu6"),
                       "decoder_activation")(x)
    x = keras.layers.Concatenate(name="out_skip")([x, skips[0]])
    x = keras.layers.Conv2DTranspose(
        3, 4, strides=2, padding="same", name="output_deconv",
        kernel_initializer="glorot_uniform" if base is None else small_init())(x)
    return inpaint_model(inputs, x, base, p, "wgan_gl")


@keras.utils.register_keras_serializable(package="tfface")
class HoleCrop(keras.layers.Layer):
    """A ``size`` × ``size`` crop of each image centred on its hole's bounding box.

    Inputs ``[image, mask]`` (mask 1 = hole, ``[B, H, W, 1]``). The crop's top-left
    corner is the bounding-box centre minus ``size / 2``, rounded to a whole pixel and
    clamped so the crop stays inside the image; an image without a hole is cropped at
    its centre. The crop is a pixel copy (gathers at the computed offsets),
    differentiable with respect to the image to second order (for the gradient penalty).
    """

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    @staticmethod
    def offsets(mask: tf.Tensor, size: int) -> tf.Tensor:
        """``[B, 2]`` int32 (top, left) of the crops of ``mask`` (``[B, H, W, 1]``)."""
        mask = tf.cast(mask, tf.float32)
        h, w = tf.shape(mask)[1], tf.shape(mask)[2]

        def centre(profile, n):  # profile [B, n]: 1 where the hole reaches
            idx = tf.cast(tf.range(n), tf.float32)
            has = tf.reduce_max(profile, axis=1) > 0
            lo = tf.reduce_min(tf.where(profile > 0, idx, tf.cast(n, tf.float32)), axis=1)
            hi = tf.reduce_max(tf.where(profile > 0, idx, -1.0), axis=1)
            mid = (lo + hi + 1.0) / 2.0
            return tf.where(has, mid, tf.cast(n, tf.float32) / 2.0)

        rows = tf.reduce_max(mask[..., 0], axis=2)
        cols = tf.reduce_max(mask[..., 0], axis=1)
        top = tf.round(centre(rows, h) - size / 2.0)
        left = tf.round(centre(cols, w) - size / 2.0)
        top = tf.clip_by_value(top, 0.0, tf.cast(h - size, tf.float32))
        left = tf.clip_by_value(left, 0.0, tf.cast(w - size, tf.float32))
        return tf.cast(tf.stack([top, left], axis=1), tf.int32)

    def call(self, inputs):
        image, mask = inputs
        n = self.size
        off = tf.stop_gradient(self.offsets(mask, n))
        ramp = tf.range(n, dtype=tf.int32)[None, :]
        # Two batched gathers (rows, then columns): a pixel copy whose gradient is a
        # scatter and whose second derivative a gather again, which the critics'
        # gradient penalty needs (crop_and_resize has no second-order gradient).
        rows = tf.gather(image, off[:, :1] + ramp, axis=1, batch_dims=1)
        return tf.gather(rows, off[:, 1:] + ramp, axis=2, batch_dims=1)

    def compute_output_shape(self, input_shape):
        b = tf.TensorShape(input_shape[0])[0]
        c = tf.TensorShape(input_shape[0])[-1]
        return tf.TensorShape([b, self.size, self.size, c])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _critic_trunk(x, filters, prefix: str):
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(int(f), 5, strides=2, padding="same", name=f"{prefix}_conv{i}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"{prefix}_lrelu{i}")(x)
    x = keras.layers.Flatten(name=f"{prefix}_flatten")(x)
    # No bias: a constant cancels out of E[D(fake)] - E[D(real)] and of the gradient
    # penalty, so it would never learn.
    return keras.layers.Dense(1, use_bias=False, dtype="float32", name=f"{prefix}_score")(x)


def build_discriminator(cfg) -> keras.Model:
    """The global and local critics: ``[image, mask]`` → ``[B, 2]`` (global, local)."""
    p = FAMILY.params(cfg)
    size = cfg.data.image_size
    image = keras.Input((size, size, 3), name="image")
    mask = keras.Input((size, size, 1), name="mask")
    g = _critic_trunk(image, p["critic_filters"], "global")
    crop = HoleCrop(local_size(cfg), name="hole_crop")([image, mask])
    loc = _critic_trunk(crop, p["local_critic_filters"], "local")
    scores = keras.layers.Concatenate(name="scores", dtype="float32")([g, loc])
    return keras.Model([image, mask], scores, name="critics")


FAMILY = Family(
    name="wgan_gl", task="inpaint", presets=PRESETS, default_preset="paper",
    default_params=_DEFAULT_PARAMS, build_generator=build_generator,
    build_discriminator=build_discriminator, disc_condition="mask", regime="wgan_gp",
    int8_keep_float=inpaint_keep_float,
)
