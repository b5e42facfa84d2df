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


def global_local_patch_critic(
    image_size: int,
    filters: Sequence[int] = (64, 128, 256, 256),
    name: str = "critics",
    blur: bool = False,
    sees_mask: bool = False,
) -> keras.Model:
    """A global and a local critic in one patch network: ``[image, mask]`` → ``[B, 2]``.

    One stack of Conv 4×4 stride 2 + LeakyReLU(0.2) (no BatchNorm: a per-sample
    gradient penalty must see each face on its own) maps the face to a map of patch
    scores. Column 0, the *global* critic, is their mean over the whole face; column 1,
    the *local* critic, their mean over the patches that cover the hole (the mask
    average-pooled to the score map's grid, used as weights). So the local critic judges
    exactly the filled region, whatever its shape and size (the role of the local
    critic's fixed hole crop in the WGAN with global and local critics, and of DeepFill
    v2's SN-PatchGAN), and both share features, which halves the critics' cost.
    An image without a hole gets the global score in both columns.

    ``blur``: a fixed binomial blur (:class:`~tfface.models.layers.Blur2D`,
    ``<name>_blur<i>``) before every strided convolution but the first, on the features
    (the image itself is judged unblurred, so the finest texture stays visible). A strided
    critic's input gradient ripples at its strides, locked to the pixel grid (at 4, 8 and
    16 px behind the second to fourth convolutions), and a generator learns to paint
    that ripple (docs/realism.md); the blur takes the period-2 part out of each of those
    layers. No weights, so a run with it has the same parameters.

    ``sees_mask``: the hole is also a fourth input channel of the first convolution
    (``<name>_with_mask``), so every patch score knows which of its pixels were filled
    (a conditional critic, as pix2pix's discriminator reads its condition): it can
    judge a fill against the known face around it instead of only as a face. Without
    it the mask only weights the local score. The first convolution gets one more input
    channel; everything else is the same.
    """
    from tfface.models.layers import Blur2D, LeakyMax

    image = keras.Input((image_size, image_size, 3), name="image")
    mask = keras.Input((image_size, image_size, 1), name="mask")
    x = image
    if sees_mask:
        x = keras.layers.Concatenate(name=f"{name}_with_mask")([image, mask])
    for i, f in enumerate(filters):
        if blur and i > 0:
            x = Blur2D(name=f"{name}_blur{i}")(x)
        x = keras.layers.Conv2D(int(f), 4, strides=2, padding="same",
                                kernel_initializer=_init(), name=f"{name}_conv{i}")(x)
        x = LeakyMax(0.2, name=f"{name}_lrelu{i}")(x)  # LeakyReLU, unfused (see LeakyMax)
    # No bias: a constant cancels out of the Wasserstein and hinge differences and of a
    # gradient penalty, so it would never learn.
    scores = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer=_init(),
                                 use_bias=False, dtype="float32", name=f"{name}_patch")(x)
    factor = 2 ** len(filters)
    weights = keras.layers.AveragePooling2D(factor, factor, dtype="float32",
                                            name=f"{name}_hole_pool")(mask)
    out = HolePooledScores(dtype="float32", name=f"{name}_scores")([scores, weights])
    return keras.Model([image, mask], out, name=name)


@keras.utils.register_keras_serializable(package="tfface")
class HolePooledScores(keras.layers.Layer):
    """``[patch scores, hole weights]`` (both ``[B, h, w, 1]``) → ``[B, 2]``: the mean
    score, and the hole-weighted mean score (the mean score when there is no hole)."""

    def call(self, inputs):
        import tensorflow as tf

        scores, weights = (tf.cast(t, tf.float32) for t in inputs)
        glob = tf.reduce_mean(scores, axis=[1, 2, 3])
        w = tf.reduce_sum(weights, axis=[1, 2, 3])
        local = tf.reduce_sum(scores * weights, axis=[1, 2, 3]) / tf.maximum(w, 1e-6)
        local = tf.where(w > 1e-6, local, glob)
        return tf.stack([glob, local], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 2)
