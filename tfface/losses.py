"""Loss terms as small pure functions; weights come from the config, not from here.

All images are float tensors in [-1, 1]; every function returns a scalar mean.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from tfface.registry import Registry


def mse(target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.square(tf.cast(target, tf.float32) - tf.cast(pred, tf.float32)))


def l1(target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.abs(tf.cast(target, tf.float32) - tf.cast(pred, tf.float32)))


PIXEL_LOSSES: Registry[Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = Registry(
    "pixel loss", {"mse": mse, "l1": l1})


def bce_logits(target: float | tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Binary cross-entropy of logits against a constant (or tensor) target in [0, 1]."""
    logits = tf.cast(logits, tf.float32)
    labels = tf.ones_like(logits) * target
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def discriminator_loss(
    real_logits: tf.Tensor, fake_logits: tf.Tensor, label_smoothing: float = 0.0
) -> tf.Tensor:
    """BCE of the discriminator, with one-sided label smoothing of the real target."""
    return bce_logits(1.0 - label_smoothing, real_logits) + bce_logits(0.0, fake_logits)


def generator_adv_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Non-saturating adversarial loss of the generator: make D call fakes real."""
    return bce_logits(1.0, fake_logits)


# -- content (perceptual) loss ------------------------------------------------------

VGG19_NOTOP_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
_VGG_BGR_MEAN = (103.939, 116.779, 123.68)


def vgg_cache_path() -> str:
    """Where Keras caches the VGG19 (no top) ImageNet weights."""
    import os

    return os.path.join(os.path.expanduser("~"), ".keras", "models", VGG19_NOTOP_FILE)


def missing_vgg_weights_message(path: str | None) -> str:
    where = f"'{path}' does not exist" if path else f"no file at {vgg_cache_path()}"
    return (
        f"the VGG19 content loss needs the ImageNet VGG19 weights, but {where}. "
        "On a machine with internet run\n"
        "    python -c \"import tf_keras; tf_keras.applications.VGG19(include_top=False)\"\n"
        f"then copy ~/.keras/models/{VGG19_NOTOP_FILE} here and pass it with "
        "--vgg-weights PATH (or put it in ~/.keras/models/). To train without it, use "
        "--content-loss pixel (the SRGAN-MSE variant)."
    )


class FeatureExtractor:
    """Frozen feature network applied to [-1, 1] RGB images.

    Inputs are mapped to what VGG was trained on (the Caffe convention: [0, 255],
    BGR, ImageNet mean subtracted) before the backbone runs, and the feature maps are
    multiplied by ``feature_scale`` (SRGAN's 1/12.75). Built by
    :func:`build_feature_extractor`; not a Keras layer, so it never enters a saved
    generator.
    """

    def __init__(self, backbone, feature_scale: float = 1.0, name: str = "vgg19"):
        backbone.trainable = False
        self.backbone = backbone
        self.feature_scale = float(feature_scale)
        self.name = name

    @staticmethod
    def preprocess(x: tf.Tensor) -> tf.Tensor:
        x = (tf.cast(x, tf.float32) + 1.0) * 127.5
        return x[..., ::-1] - tf.constant(_VGG_BGR_MEAN, tf.float32)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        feats = self.backbone(self.preprocess(x), training=False)
        return tf.cast(feats, tf.float32) * self.feature_scale


def build_feature_extractor(
    kind: str = "vgg54",
    weights: str | None = None,
    *,
    backbone: str = "vgg19",
    feature_scale: float = 1.0 / 12.75,
) -> FeatureExtractor:
    """VGG19 truncated at ``block5_conv4`` (φ5,4), after (``vgg54``) or before
    (``vgg54_preact``) its ReLU, with ImageNet weights from ``weights`` or the Keras cache.

    ``backbone="tiny-random"`` builds two small random-weight conv layers instead (same
    preprocessing, same call path) for tests and smoke runs without the weight file.

    Raises:
        tfface.config.ConfigError: the weight file is missing; the message says how to
            get it.
    """
    import os

    from tfface import keras
    from tfface.config import ConfigError

    if kind not in ("vgg54", "vgg54_preact"):
        raise ConfigError(f"unknown feature extractor '{kind}'")
    preact = kind == "vgg54_preact"
    if backbone == "tiny-random":
        init = keras.initializers.HeNormal(seed=7)
        inp = keras.Input((None, None, 3))
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                                kernel_initializer=init)(inp)
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same",
                                activation=None if preact else "relu",
                                kernel_initializer=keras.initializers.HeNormal(seed=8))(x)
        # Random VGG-scale inputs (±128) need a smaller gain to keep features O(1).
        model = keras.Model(inp, x, name="tiny_random_features")
        return FeatureExtractor(model, feature_scale / 12.75, name="tiny-random")
    if backbone != "vgg19":
        raise ConfigError(f"unknown content extractor '{backbone}'")
    path = weights or vgg_cache_path()
    if not os.path.exists(path):
        raise ConfigError(missing_vgg_weights_message(weights))
    vgg = keras.applications.VGG19(include_top=False, weights=None)
    vgg.load_weights(path)
    last = vgg.get_layer("block5_conv4")
    if preact:
        last.activation = keras.activations.linear
    model = keras.Model(vgg.input, last.output, name=kind)
    return FeatureExtractor(model, feature_scale, name=kind)


def content_loss(extractor: FeatureExtractor, target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    """MSE between the feature maps of target and prediction (the SRGAN VGG loss)."""
    return mse(tf.stop_gradient(extractor(target)), extractor(pred))


# -- adversarial losses of the WGAN-GP and SN-PatchGAN regimes ----------------------

def wasserstein_critic_loss(real_scores: tf.Tensor, fake_scores: tf.Tensor) -> tf.Tensor:
    """Critic side of the Wasserstein loss: E[D(fake)] - E[D(real)] (to minimize)."""
    return tf.reduce_mean(tf.cast(fake_scores, tf.float32)) - tf.reduce_mean(
        tf.cast(real_scores, tf.float32))


def wasserstein_generator_loss(fake_scores: tf.Tensor) -> tf.Tensor:
    """Generator side of the Wasserstein loss: -E[D(fake)]."""
    return -tf.reduce_mean(tf.cast(fake_scores, tf.float32))


def gradient_penalty(grads: tf.Tensor) -> tf.Tensor:
    """WGAN-GP term E[(‖∇D(x̂)‖₂ - 1)²] from per-sample input gradients ``[B, ...]``."""
    g = tf.reshape(tf.cast(grads, tf.float32), [tf.shape(grads)[0], -1])
    norm = tf.sqrt(tf.reduce_sum(tf.square(g), axis=1) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))


def grid_pattern(target: tf.Tensor, pred: tf.Tensor, mask: tf.Tensor,
                 period: int = 8) -> tf.Tensor:
    """Energy of the part of the fill's error that repeats on the pixel grid.

    The luma of ``pred - target`` inside the hole (``mask`` ``[B, H, W, 1]``, 1 = hole) is
    averaged per position modulo ``period`` px on both axes (the ``period`` x ``period``
    cells folded onto one), the hole-weighted mean of that folded cell is removed, and the
    hole-weighted mean square is returned (mean over the batch; images in [-1, 1]). A
    pattern locked to the grid at ``period`` px or a divisor of it (stripes or dots a
    network's strides paint) survives the folding; noise and smooth errors average out.
    A face's detail that the fill misses averages out only in part on a small hole (few
    cells per position): on a 64x80 px hole, a fill blurred with sigma 1 px scores 6 % of
    3-level 8 px stripes, sigma 3 px 41 %. 0 for a batch without a hole.
    """
    period = int(period)
    err = tf.tensordot(tf.cast(pred, tf.float32) - tf.cast(target, tf.float32),
                       tf.constant([0.299, 0.587, 0.114]), axes=[[3], [0]])
    m = tf.cast(mask, tf.float32)[..., 0]
    h = (err.shape[1] // period) * period
    w = (err.shape[2] // period) * period
    err, m = err[:, :h, :w], m[:, :h, :w]

    def fold(x):
        x = tf.reshape(x, [-1, h // period, period, w // period, period])
        return tf.reduce_sum(x, axis=[1, 3])  # [B, period, period]

    counts = fold(m)
    cells = fold(err * m) / tf.maximum(counts, 1e-6)
    weights = counts / tf.maximum(tf.reduce_sum(counts, axis=[1, 2], keepdims=True), 1e-6)
    mean = tf.reduce_sum(weights * cells, axis=[1, 2], keepdims=True)
    return tf.reduce_mean(tf.reduce_sum(weights * tf.square(cells - mean), axis=[1, 2]))


def spectral_amplitude(target: tf.Tensor, pred: tf.Tensor, patch: int = 32) -> tf.Tensor:
    """Distance of the local amplitude spectra of ``pred`` and ``target``, phase ignored.

    Both images (``[B, H, W, C]`` in [-1, 1]) are cut into ``patch`` x ``patch`` squares
    that overlap by half (the border past the last whole square is left out); each square,
    weighted by a Hann window (so an edge that crosses the square's side does not count as
    high frequencies), is Fourier-transformed per channel, only the amplitude is kept, and
    the mean absolute difference of the amplitudes is returned (mean over squares,
    frequencies, channels and the batch). A pixel loss is minimised by the average of
    every plausible detail, whose high frequencies cancel: a blur. The amplitude does not
    care where in the square an edge or a pore lies, only how much of each frequency
    there is, so that average does not satisfy it: it asks for the real face's texture
    energy (the Fourier-space losses of Fuoli et al., ICCV 2021, which support or replace
    a GAN critic in super-resolution; here per square, so the energy stays where it
    belongs). Squares where both images agree (outside the hole of a ``keep_known``
    inpainting model) add nothing. The transform is scaled so that a detail of amplitude
    ``a`` that the prediction lacks costs about ``a``, like the pixel losses.
    """
    patch = int(patch)
    t, p = tf.cast(target, tf.float32), tf.cast(pred, tf.float32)
    if t.shape[1] < patch or t.shape[2] < patch:
        raise ValueError(f"spectral_amplitude: images of {t.shape[1]}x{t.shape[2]} px are "
                         f"smaller than one {patch} px square")
    stride = max(1, patch // 2)
    hann = tf.constant(np.hanning(patch + 2)[1:-1], tf.float32)  # no zero weights at the ends
    window = hann[:, None] * hann[None, :]
    window = window / tf.sqrt(tf.reduce_mean(tf.square(window)))  # keeps the energy

    def amplitude(x):
        c = x.shape[-1]
        sq = tf.image.extract_patches(x, [1, patch, patch, 1], [1, stride, stride, 1],
                                      [1, 1, 1, 1], "VALID")  # [B, rows, cols, p*p*C]
        sq = tf.reshape(sq, [-1, patch, patch, c])
        sq = tf.transpose(sq, [0, 3, 1, 2]) * window  # [N, C, p, p]
        f = tf.signal.rfft2d(sq) / float(patch)  # orthonormal
        return tf.sqrt(tf.square(tf.math.real(f)) + tf.square(tf.math.imag(f)) + 1e-8)

    return tf.reduce_mean(tf.abs(amplitude(p) - tf.stop_gradient(amplitude(t))))


def hinge_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Hinge loss of an (SN-)PatchGAN: E[relu(1 - D(real))] + E[relu(1 + D(fake))]."""
    return (tf.reduce_mean(tf.nn.relu(1.0 - tf.cast(real_logits, tf.float32)))
            + tf.reduce_mean(tf.nn.relu(1.0 + tf.cast(fake_logits, tf.float32))))


def hinge_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Generator side of the hinge loss: -E[D(fake)]."""
    return -tf.reduce_mean(tf.cast(fake_logits, tf.float32))


def dice_loss(target: tf.Tensor, prob: tf.Tensor, smooth: float = 1.0) -> tf.Tensor:
    """Dice loss of a soft segmentation, per image then averaged over the batch:
    ``1 - (2 Σ p·t + s) / (Σ p² + Σ t² + s)`` (Ha et al., Eq. 1; ``s`` keeps images
    without an occluder defined)."""
    t = tf.cast(target, tf.float32)
    p = tf.cast(prob, tf.float32)
    axes = list(range(1, len(p.shape)))
    inter = tf.reduce_sum(p * t, axis=axes)
    den = tf.reduce_sum(p * p, axis=axes) + tf.reduce_sum(t * t, axis=axes)
    return tf.reduce_mean(1.0 - (2.0 * inter + smooth) / (den + smooth))
