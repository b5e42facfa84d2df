"""SRGAN face super-resolution (Ledig et al.; Nair et al. for faces).

Generator: SRResNet. A 9×9 convolution + PReLU, ``n_blocks`` residual blocks
(Conv 3×3 → BN → PReLU → Conv 3×3 → BN, identity skip), Conv 3×3 → BN and a global
skip from the first feature map, then one ×2 upsampling stage per factor of two of
the scale (Conv 3×3 to 4·F channels → :class:`~tfface.models.layers.PixelShuffle`
→ PReLU) and a 9×9 convolution to RGB with a ``tanh`` head (``clip`` is offered for
full-int8 files). PReLU is per channel (``shared_axes=[1, 2]``) as in SRGAN. The
input is the low-resolution face ``lr`` (``image_size // scale`` pixels), the output
the ``image_size`` face ``restored``; both in [-1, 1]. With ``oversample`` k > 1 the
network enlarges by ``scale · k`` and a k×k average pooling (what ``INTER_AREA`` does for
an integer factor) brings it to ``scale``: a ×2 model with ``oversample`` 2 is the ×4
network with its output shrunk ÷2, so it starts from a ×4 model's weights unchanged.

Discriminator: the SRGAN VGG-style network. Eight Conv 3×3 blocks with
LeakyReLU(0.2) (BN on all but the first), strides alternating 1, 2 and channels
doubling every two blocks (64 → 512), Dense 1024 → LeakyReLU → Dense 1 (a logit).
The dense head reads the flattened feature map (``disc_head="flatten"``, the paper)
so its size follows the configured HR size; ``"gap"`` (global average pooling)
keeps it small for large images.

Losses (set by the presets): VGG19 φ5,4 content loss (feature maps scaled by
1/12.75) + 10⁻³ × adversarial, after a generator pre-training phase on the pixel
MSE (``train.pretrain_steps``).
"""

from __future__ import annotations

import math
from typing import Any

from tfface import keras
from tfface.models.family import Family
from tfface.models.layers import BicubicUpsample, PixelShuffle, output_head

_DEFAULT_PARAMS: dict[str, Any] = {
    "n_blocks": 16,
    "filters": 64,
    "output_head": "tanh",
    "upsample_skip": "none",
    "oversample": 1,
    "disc_filters": 64,
    "disc_dense": 1024,
    "disc_head": "flatten",
}

_SRGAN_TRAIN = {
    "g_lr": 1e-4, "d_lr": 1e-4, "beta_1": 0.9, "adv_weight": 1e-3, "pixel_weight": 0.0,
    "pixel_loss": "mse", "content_loss": "vgg54", "content_weight": 1.0,
    "label_smoothing": 0.0,
}

PRESETS: dict[str, dict[str, Any]] = {
    # Ledig et al.: 96 px HR crops, ×4, B = 16, F = 64, batch 16, Adam β₁ 0.9 at 1e-4
    # (pre-training with MSE first, then 1e-4 and a decay to 1e-5 in the GAN phase).
    "paper": {
        "model": {"params": dict(_DEFAULT_PARAMS)},
        "data": {"image_size": 96, "task": "sr", "scale": 4},
        "train": {**_SRGAN_TRAIN, "batch_size": 16, "epochs": 30, "steps_per_epoch": 10000,
                  "pretrain_steps": 100000, "g_lr_schedule": "step",
                  "d_lr_schedule": "step", "lr_decay_steps": 200000, "lr_decay_rate": 0.1,
                  "save_every_steps": 2000},
    },
    # Nair et al.'s faces: 64 px HR from 32 px LR (×2), same networks.
    "face": {
        "model": {"params": dict(_DEFAULT_PARAMS)},
        "data": {"image_size": 64, "task": "sr", "scale": 2},
        "train": {**_SRGAN_TRAIN, "batch_size": 16, "epochs": 20, "pretrain_steps": 10000},
    },
    # Minutes on a laptop CPU (needs the VGG19 weights, or --content-loss pixel).
    "demo": {
        "model": {"params": dict(_DEFAULT_PARAMS, n_blocks=4, filters=32, disc_filters=16,
                                 disc_dense=128, output_head="clip")},
        "data": {"image_size": 64, "task": "sr", "scale": 4, "eval_count": 64},
        "train": {**_SRGAN_TRAIN, "batch_size": 16, "epochs": 6, "steps_per_epoch": 150,
                  "pretrain_steps": 300, "save_every_steps": 150},
    },
    # The shipped android_demo_assets/srgan model: ×4 (32 → 128 px), B = 8, F = 32,
    # a residual over fixed bicubic upsampling (BicubicUpsample: TFLite builtins), trained
    # on the pixel L1 loss alone (the PSNR-oriented SRResNet of the paper).
    "mobile": {
        "model": {"params": dict(_DEFAULT_PARAMS, n_blocks=8, filters=32, disc_filters=16,
                                 disc_dense=128, output_head="clip",
                                 upsample_skip="bicubic")},
        "data": {"image_size": 128, "task": "sr", "scale": 4, "eval_count": 100},
        "train": {**_SRGAN_TRAIN, "content_loss": "pixel", "pixel_loss": "l1",
                  "pixel_weight": 1.0, "adv_weight": 0.0, "g_lr": 3e-4,
                  "batch_size": 16, "epochs": 100, "steps_per_epoch": 200,
                  "pretrain_steps": 0, "save_every_steps": 200},
    },
    # Seconds: tests and smoke runs. The content loss runs through the same code path
    # with a tiny random-weight feature extractor (no VGG19 download).
    "tiny": {
        "model": {"params": dict(_DEFAULT_PARAMS, n_blocks=2, filters=16, disc_filters=8,
                                 disc_dense=32, output_head="clip")},
        "data": {"image_size": 32, "task": "sr", "scale": 4, "eval_count": 8},
        "train": {**_SRGAN_TRAIN, "content_extractor": "tiny-random", "batch_size": 4,
                  "epochs": 2, "steps_per_epoch": 5, "pretrain_steps": 3,
                  "save_every_steps": 5},
    },
}


def _prelu(name: str) -> keras.layers.Layer:
    return keras.layers.PReLU(shared_axes=[1, 2], name=name)


def upsampling_stages(scale: int) -> int:
    """Number of ×2 stages for ``scale`` (a power of two >= 2)."""
    stages = int(round(math.log2(scale))) if scale >= 2 else 0
    if scale < 2 or 2 ** stages != scale:
        raise ValueError(f"SRGAN upsamples by powers of two; data.scale must be 2, 4, 8…, "
                         f"got {scale}")
    return stages


def supports_scale(scale: int) -> bool:
    """Whether the generator can upsample by ``scale`` (powers of two, ×2 stages)."""
    return scale >= 2 and scale & (scale - 1) == 0


def downsampling_factor(cfg) -> int:
    """``data.image_size`` must be a multiple of the SR scale (the LR input is
    ``image_size // scale`` pixels)."""
    return int(cfg.data.scale)


def build_generator(cfg) -> keras.Model:
    """SRResNet: ``lr`` face [S/scale] in [-1, 1] → ``restored`` face [S] in [-1, 1]."""
    p = FAMILY.params(cfg)
    scale = int(cfg.data.scale)
    over = int(p["oversample"])
    stages = upsampling_stages(scale * over)
    size = cfg.data.image_size
    if size % scale:
        raise ValueError(f"data.scale {scale} must divide data.image_size {size}")
    f = int(p["filters"])
    lr = keras.Input((size // scale, size // scale, 3), name="lr")
    x = keras.layers.Conv2D(f, 9, padding="same", name="head_conv")(lr)
    x = head = _prelu("head_prelu")(x)
    for b in range(int(p["n_blocks"])):
        y = keras.layers.Conv2D(f, 3, padding="same", name=f"res{b}_conv1")(x)
        y = keras.layers.BatchNormalization(name=f"res{b}_bn1")(y)
        y = _prelu(f"res{b}_prelu")(y)
        y = keras.layers.Conv2D(f, 3, padding="same", name=f"res{b}_conv2")(y)
        y = keras.layers.BatchNormalization(name=f"res{b}_bn2")(y)
        x = keras.layers.Add(name=f"res{b}_add")([x, y])
    x = keras.layers.Conv2D(f, 3, padding="same", name="trunk_conv")(x)
    x = keras.layers.BatchNormalization(name="trunk_bn")(x)
    x = keras.layers.Add(name="global_skip")([head, x])
    for s in range(stages):
        x = keras.layers.Conv2D(4 * f, 3, padding="same", name=f"up{s}_conv")(x)
        x = PixelShuffle(2, name=f"up{s}_shuffle")(x)
        x = _prelu(f"up{s}_prelu")(x)
    skip = p["upsample_skip"]
    if skip == "none":
        x = keras.layers.Conv2D(3, 9, padding="same", name="output_conv")(x)
    elif skip in ("bicubic", "bilinear", "nearest"):
        # Residual over a plain upsampling of the input, its last conv started near
        # zero: the untrained model is already the interpolated face.
        x = keras.layers.Conv2D(3, 9, padding="same", name="output_conv",
                                kernel_initializer=keras.initializers.RandomNormal(
                                    stddev=1e-3))(x)
        if skip == "bicubic":
            up = BicubicUpsample(scale * over, name="lr_upsample")(lr)
        else:
            up = keras.layers.UpSampling2D(scale * over, interpolation=skip,
                                           name="lr_upsample")(lr)
        x = keras.layers.Add(name="upsample_residual")([up, x])
    else:
        raise ValueError(f"upsample_skip must be 'none', 'bicubic', 'bilinear' or 'nearest', "
                         f"got '{skip}'")
    out = output_head(x, p["output_head"])
    if over > 1:
        out = keras.layers.AveragePooling2D(over, name="oversample_pool")(out)
    return keras.Model(lr, out, name="srgan")


def build_discriminator(cfg) -> keras.Model:
    """The SRGAN discriminator on ``image_size`` faces: one real/fake logit per image."""
    p = FAMILY.params(cfg)
    size = cfg.data.image_size
    base = int(p["disc_filters"])
    image = keras.Input((size, size, 3), name="image")
    x = image
    for i in range(8):
        f, stride = base * 2 ** (i // 2), 1 + i % 2
        x = keras.layers.Conv2D(f, 3, strides=stride, padding="same", use_bias=i == 0,
                                name=f"d{i}_conv")(x)
        if i:
            x = keras.layers.BatchNormalization(name=f"d{i}_bn")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"d{i}_lrelu")(x)
    if p["disc_head"] == "flatten":
        x = keras.layers.Flatten(name="d_flatten")(x)
    elif p["disc_head"] == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="d_gap")(x)
    else:
        raise ValueError(f"disc_head must be 'flatten' or 'gap', got '{p['disc_head']}'")
    x = keras.layers.Dense(int(p["disc_dense"]), name="d_dense")(x)
    x = keras.layers.LeakyReLU(0.2, name="d_dense_lrelu")(x)
    logit = keras.layers.Dense(1, name="d_logit", dtype="float32")(x)
    return keras.Model(image, logit, name="discriminator")


FAMILY = Family(
    name="srgan", task="sr", presets=PRESETS, default_preset="paper",
    default_params=_DEFAULT_PARAMS, build_generator=build_generator,
    build_discriminator=build_discriminator, downsampling_factor=downsampling_factor,
    supports_scale=supports_scale,
)
