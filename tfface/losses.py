"""Loss terms as small pure functions; weights come from the config, not from here.

All images are float tensors in [-1, 1]; every function returns a scalar mean.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf


def mse(target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.square(tf.cast(target, tf.float32) - tf.cast(pred, tf.float32)))


def l1(target: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.abs(tf.cast(target, tf.float32) - tf.cast(pred, tf.float32)))


PIXEL_LOSSES: dict[str, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = {"mse": mse, "l1": l1}


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
