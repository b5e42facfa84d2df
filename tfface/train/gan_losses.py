"""The adversarial losses, one table: ``vanilla`` (BCE), ``lsgan``, ``wgan-gp``, ``hinge``.

The trainer (:class:`tfface.train.trainer.RestorationTrainer`) is given one entry
(``compile(gan_loss=NAME)``; ``train.gan_loss`` in a config, else the family's or the
regime's default) and calls its two sides on the discriminator's scores: the
discriminator's loss ``discriminator(real, fake, label_smoothing)`` and the generator's
adversarial term ``generator(fake)``. A discriminator whose output has several channels
on its last axis holds several critics (``wgan_gl``: global, local); each side is then
summed over them. ``gradient_penalty`` asks the trainer to add ``gp_weight`` times the
WGAN-GP penalty of each critic (Gulrajani et al.) to the discriminator's loss, and
``score`` is what ``d_real``/``d_fake`` log (the discriminator's probability for BCE,
the raw score otherwise).

The BCE, Wasserstein and hinge terms live in :mod:`tfface.losses`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import tensorflow as tf

from tfface import losses
from tfface.config import GAN_LOSSES as NAMES
from tfface.registry import Registry

Tensor = tf.Tensor


@dataclass(frozen=True)
class GANLoss:
    """One adversarial loss: both players' sides and how it is logged."""

    name: str
    discriminator: Callable[[Tensor, Tensor, float], Tensor]
    """``(real scores, fake scores, label smoothing) -> loss`` to minimize."""
    generator: Callable[[Tensor], Tensor]
    """``fake scores -> loss`` of the generator (weighted by ``adv_weight``)."""
    score: Callable[[Tensor], Tensor]
    """Scores → the value ``d_real``/``d_fake`` average."""
    gradient_penalty: bool = False


def _raw(scores: Tensor) -> Tensor:
    return tf.cast(scores, tf.float32)


def _bce_discriminator(real, fake, label_smoothing: float):
    return losses.discriminator_loss(real, fake, label_smoothing)


def _lsgan_discriminator(real, fake, label_smoothing: float):
    """E[(D(real) - (1 - smoothing))²] + E[D(fake)²] (as BasicSR's ``lsgan``)."""
    return (losses.mse(tf.ones_like(real, tf.float32) * (1.0 - label_smoothing), real)
            + losses.mse(tf.zeros_like(fake, tf.float32), fake))


def _lsgan_generator(fake):
    """E[(D(fake) - 1)²]."""
    return losses.mse(tf.ones_like(fake, tf.float32), fake)


def _wasserstein_discriminator(real, fake, label_smoothing: float):
    return losses.wasserstein_critic_loss(real, fake)


def _hinge_discriminator(real, fake, label_smoothing: float):
    return losses.hinge_discriminator_loss(real, fake)


GAN_LOSSES: Registry[GANLoss] = Registry("adversarial loss", {
    # Non-saturating BCE of logits (Goodfellow et al.; pix2pix, SRGAN, the V-Net GAN).
    "vanilla": GANLoss("vanilla", _bce_discriminator, losses.generator_adv_loss, tf.sigmoid),
    # Least squares (Mao et al.): scores regressed to 1 (real) and 0 (fake).
    "lsgan": GANLoss("lsgan", _lsgan_discriminator, _lsgan_generator, _raw),
    # Wasserstein with a gradient penalty (Gulrajani et al.; Liu et al.'s two critics).
    "wgan-gp": GANLoss("wgan-gp", _wasserstein_discriminator, losses.wasserstein_generator_loss,
                       _raw, gradient_penalty=True),
    # Hinge (SN-PatchGAN of DeepFill v2; the unmask family).
    "hinge": GANLoss("hinge", _hinge_discriminator, losses.hinge_generator_loss, _raw),
}, listing="known")

if tuple(GAN_LOSSES) != NAMES:  # the config validates names against tfface.config
    raise ImportError(f"tfface.config.GAN_LOSSES {NAMES} does not list the table "
                      f"{tuple(GAN_LOSSES)}")


def get_gan_loss(name: str | GANLoss) -> GANLoss:
    """The table entry ``name`` (an entry is returned as is)."""
    if isinstance(name, GANLoss):
        return name
    return GAN_LOSSES.lookup(name)


def heads(scores: Tensor) -> list[Tensor]:
    """The critics of a discriminator output: one per channel of the last axis (the
    whole tensor when there is one)."""
    n = scores.shape[-1]
    return [scores] if n == 1 or n is None else [scores[..., k] for k in range(n)]


def total(terms: list[Tensor]) -> Tensor:
    """``terms[0] + terms[1] + ...`` (one term: itself)."""
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out
