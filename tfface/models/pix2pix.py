"""pix2pix occlusion remover (Isola et al.; John & Danti's lightweight occlusion removal).

Generator: the pix2pix U-Net. The encoder is a stack of Conv 4×4 stride 2 → BatchNorm
→ LeakyReLU(0.2) blocks (no BatchNorm on the first block, nor on the 1×1 innermost
block, as in the authors' implementation: with the paper's batch of one, a BatchNorm
there would zero the bottleneck); the decoder mirrors it with transposed Conv 4×4
stride 2 → BatchNorm → Dropout(0.5) on the first three blocks → ReLU, each followed
by a concatenation with the encoder feature map of the same size; a last transposed
convolution maps to 3 channels and a ``tanh`` head (``clip`` is offered for models
that ship in full int8, see :class:`~tfface.models.layers.ClipOutput`). All weights
start from N(0, 0.02). The depth follows the image size: the encoder halves the
image until it cannot any more (down to 1×1 for the canonical 256 px, 8 levels).

Discriminator: the conditional 70×70 PatchGAN, which judges (image, occluded input)
pairs concatenated along channels (``disc_condition`` :data:`~tfface.models.family.INPUT`).

Loss (set by the presets): BCE adversarial + λ·L1 with λ = 100, Adam 2e-4, β₁ = 0.5,
no label smoothing.
"""

from __future__ import annotations

from typing import Any

from tfface import keras
from tfface.models.discriminators import conv_discriminator
from tfface.models.family import INPUT, MOBILE_DATA, MOBILE_INPUT, Family
from tfface.models.layers import (MASK_INPUT_PARAMS, inpaint_inputs, inpaint_model,
                                  inpaint_keep_float, small_init)

_DEFAULT_PARAMS: dict[str, Any] = {
    "base_filters": 64,
    "max_filters": 512,
    "depth": None,  # encoder levels; None: halve the image down to 1×1 (or an odd side)
    "dropout": 0.5,
    "dropout_blocks": 3,
    "output_head": "tanh",
    "disc_filters": [64, 128, 256, 512],
    **MASK_INPUT_PARAMS,
}

_PIX2PIX_TRAIN = {
    "g_lr": 2e-4, "d_lr": 2e-4, "beta_1": 0.5, "adv_weight": 1.0, "pixel_weight": 100.0,
    "pixel_loss": "l1", "label_smoothing": 0.0,
}

PRESETS: dict[str, dict[str, Any]] = {
    # The canonical pix2pix configuration at 256×256 (U-Net 256, 70×70 PatchGAN,
    # batch 1); John & Danti train it for 250 epochs.
    "paper": {
        "model": {"params": dict(_DEFAULT_PARAMS)},
        "data": {"image_size": 256, "task": "inpaint"},
        "train": {**_PIX2PIX_TRAIN, "batch_size": 1, "epochs": 250},
    },
    # Minutes on a laptop CPU.
    "demo": {
        "model": {"params": dict(_DEFAULT_PARAMS, base_filters=16, max_filters=128,
                                 output_head="clip", disc_filters=[16, 32, 64])},
        "data": {"image_size": 64, "task": "inpaint", "eval_count": 64},
        "train": {**_PIX2PIX_TRAIN, "batch_size": 16, "epochs": 6, "steps_per_epoch": 150,
                  "save_every_steps": 150},
    },
    # The inpainting recipe of the shipped V-Net at 128 px (the mask as a second input,
    # a residual over the classical HoleFill) under pix2pix's U-Net, PatchGAN and
    # BCE + 100·L1 loss: docs/model_families.md compares the families with it at one
    # budget (pixel-loss twin: --set train.adv_weight=0).
    "mobile": {
        "model": {"params": dict(_DEFAULT_PARAMS, **MOBILE_INPUT, base_filters=16,
                                 max_filters=128, output_head="clip",
                                 disc_filters=[16, 32, 64])},
        "data": dict(MOBILE_DATA),
        "train": {**_PIX2PIX_TRAIN, "batch_size": 16, "epochs": 10, "steps_per_epoch": 150,
                  "save_every_steps": 150},
    },
    # Seconds: tests and smoke runs.
    "tiny": {
        "model": {"params": dict(_DEFAULT_PARAMS, base_filters=8, max_filters=32,
                                 output_head="clip", disc_filters=[8, 16])},
        "data": {"image_size": 32, "task": "inpaint", "eval_count": 8},
        "train": {**_PIX2PIX_TRAIN, "batch_size": 4, "epochs": 2, "steps_per_epoch": 5,
                  "save_every_steps": 5},
    },
}


def _init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(0.0, 0.02)


def unet_depth(size: int, depth: int | None = None) -> int:
    """Encoder levels for ``size``: the given depth (checked) or as many halvings as fit."""
    if depth is None:
        depth, s = 0, size
        while s % 2 == 0 and s > 1:
            s //= 2
            depth += 1
    if depth < 2 or size % (2 ** depth):
        raise ValueError(
            f"the pix2pix U-Net needs image_size divisible by 2**depth (depth >= 2), got "
            f"image_size {size} and depth {depth}"
        )
    return depth


def downsampling_factor(cfg) -> int:
    """``data.image_size`` must be a multiple of this: ``2 ** depth`` for a fixed
    ``depth``, otherwise 4 (the U-Net needs at least two halvings and then adapts)."""
    depth = FAMILY.params(cfg)["depth"]
    return 2 ** int(depth) if depth is not None else 4


def build_generator(cfg) -> keras.Model:
    """The U-Net generator: occluded face in [-1, 1] → restored face in [-1, 1]."""
    p = FAMILY.params(cfg)
    size = cfg.data.image_size
    depth = unet_depth(size, p["depth"])
    filters = [min(p["base_filters"] * 2 ** i, p["max_filters"]) for i in range(depth)]
    inputs, x, base = inpaint_inputs(size, p, "pix2pix")
    skips = []
    for i, f in enumerate(filters):
        norm = 0 < i < depth - 1
        x = keras.layers.Conv2D(f, 4, strides=2, padding="same", kernel_initializer=_init(),
                                use_bias=not norm, name=f"down{i}_conv")(x)
        if norm:
            x = keras.layers.BatchNormalization(name=f"down{i}_bn")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"down{i}_lrelu")(x)
        skips.append(x)
    for j, (f, skip) in enumerate(zip(reversed(filters[:-1]), reversed(skips[:-1]))):
        x = keras.layers.Conv2DTranspose(f, 4, strides=2, padding="same",
                                         kernel_initializer=_init(), use_bias=False,
                                         name=f"up{j}_deconv")(x)
        x = keras.layers.BatchNormalization(name=f"up{j}_bn")(x)
        if j < p["dropout_blocks"] and p["dropout"]:
            x = keras.layers.Dropout(p["dropout"], name=f"up{j}_dropout")(x)
        x = keras.layers.ReLU(name=f"up{j}_relu")(x)
        x = keras.layers.Concatenate(name=f"up{j}_concat")([x, skip])
    x = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same",
                                     kernel_initializer=_init() if base is None else small_init(),
                                     name="output_deconv")(x)
    return inpaint_model(inputs, x, base, p, "pix2pix")


def build_discriminator(cfg) -> keras.Model:
    """Conditional PatchGAN judging (image, occluded input) pairs (70×70 with 4 blocks)."""
    p = FAMILY.params(cfg)
    return conv_discriminator(cfg.data.image_size, p["disc_filters"], cond_channels=3,
                              name="discriminator")


FAMILY = Family(
    name="pix2pix", task="inpaint", presets=PRESETS, default_preset="paper",
    default_params=_DEFAULT_PARAMS, build_generator=build_generator,
    build_discriminator=build_discriminator, disc_condition=INPUT,
    downsampling_factor=downsampling_factor, int8_keep_float=inpaint_keep_float,
)
