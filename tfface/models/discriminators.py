"""Discriminators shared by the adversarial families."""

from __future__ import annotations

from typing import Sequence

from tfface import keras


def _init() -> keras.initializers.Initializer:
    """N(0, 0.02), a fresh instance per layer (a shared one gives identical weights)."""
    return keras.initializers.RandomNormal(0.0, 0.02)


def conv_discriminator(
    image_size: int,
    filters: Sequence[int] = (64, 128, 256, 512),
    cond_channels: int = 0,
    name: str = "discriminator",
) -> keras.Model:
    """Convolutional patch discriminator returning a map of real/fake logits.

    Conv 4×4 (stride 2 except the last block) → BatchNorm (not on the first block)
    → LeakyReLU(0.2), then a 4×4 conv to one logit per patch. With the default four
    blocks the receptive field of each logit is 70×70 pixels (the PatchGAN of
    pix2pix). ``cond_channels > 0`` makes it conditional: the condition image is
    concatenated to the judged image along channels.
    """
    img = keras.Input((image_size, image_size, 3), name="image")
    inputs = [img]
    x = img
    if cond_channels:
        cond = keras.Input((image_size, image_size, cond_channels), name="condition")
        inputs.append(cond)
        x = keras.layers.Concatenate(name=f"{name}_concat")([img, cond])
    for i, f in enumerate(filters):
        stride = 2 if i < len(filters) - 1 else 1
        x = keras.layers.Conv2D(
            f, 4, strides=stride, padding="same", kernel_initializer=_init(),
            use_bias=i == 0, name=f"{name}_conv{i}",
        )(x)
        if i > 0:
            x = keras.layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"{name}_lrelu{i}")(x)
    logits = keras.layers.Conv2D(
        1, 4, padding="same", kernel_initializer=_init(), name=f"{name}_logits"
    )(x)
    return keras.Model(inputs, logits, name=name)
