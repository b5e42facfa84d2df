"""The WGAN-GP regime with a global and a local critic (Liu et al.; ``--arch wgan_gl``).

Each training step (one generator update, so step counts, checkpoints and resume work
as in every other run) does:

1. the generator's forward pass on the damaged faces;
2. ``n_critic`` critic updates on that batch with (the default ``wgan-gp`` loss of
   :mod:`tfface.train.gan_losses`; ``train.gan_loss`` may choose another)
   ``L_D = L_global + L_local + λ_GP (GP_global + GP_local)`` where
   ``L_x = E[D_x(fake)] - E[D_x(real)]`` (Wasserstein, as in the paper) and each
   ``GP_x = E[(‖∇D_x(x̂)‖₂ - 1)²]`` on random interpolations ``x̂`` of real and restored
   faces (Gulrajani et al.; a fresh interpolation per critic update; λ_GP is
   ``train.gp_weight``). The critics
   model (:func:`tfface.models.wgan_gl.build_discriminator`) reads ``[image, mask]``:
   the local critic judges a fixed-size crop centred on the hole, the same crop for
   real and restored faces;
3. one generator update on ``pixel_weight · L1 + adv_weight · (-E[D_g(fake)] -
   E[D_l(fake)])`` (+ the optional content term), with the updated critics.

``train.pretrain_steps`` trains the generator on the pixel loss alone first; with
``adv_weight`` 0 the regime is plain supervised training.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from tfface.train import gan_losses
from tfface.train.trainer import RegimeOptions, RestorationTrainer


@dataclass(frozen=True)
class WGANOptions(RegimeOptions):
    """Options of the ``wgan_gp`` regime (config: ``train.n_critic``)."""

    n_critic: int = 5
    """Critic updates per generator update."""

    def __post_init__(self):
        if int(self.n_critic) < 1:
            raise ValueError(f"n_critic must be >= 1, got {self.n_critic}")


class WGANTrainer(RestorationTrainer):
    """Generator + global/local critics trained with Wasserstein losses and a GP.

    Differs from :class:`~tfface.train.trainer.RestorationTrainer` in the
    discriminator's part of the step (``n_critic`` critic updates first, see
    :meth:`discriminator_step`), its default loss (``wgan-gp``) and its logs (``w_dist``
    and the per-critic ``d_global``/``d_local`` instead of ``d_real``/``d_fake``).

    Args:
        options: :class:`WGANOptions`.
        Other arguments as :class:`~tfface.train.trainer.RestorationTrainer`.
    """

    Options = WGANOptions
    GAN_LOSS = "wgan-gp"
    CRITICS = ("global", "local")
    """Names of the critics (the channels of the discriminator's output) in the logs."""
    EXTRA_METRICS = ("w_dist",) + tuple(f"d_{c}" for c in CRITICS)

    @property
    def n_critic(self) -> int:
        return int(self.options.n_critic)

    def discriminator_step(self, batch, real, fake, g_tape):
        """``n_critic`` critic updates on this batch's (frozen) restored faces, then the
        generator is judged by the updated critics."""
        d_vars = self.discriminator.trainable_variables
        with g_tape.stop_recording():
            frozen = tf.stop_gradient(fake)
            for _ in range(self.n_critic):
                _, logs, grads, _ = super().discriminator_step(batch, real, frozen, g_tape)
                self.d_optimizer.apply_gradients(zip(grads, d_vars))
        return self._disc(fake, batch, training=True), logs, grads, False

    def _critic_names(self) -> list[str]:
        gp = ["gp"] if self.gan_loss.gradient_penalty else []
        return ["w_dist", *gp, *(f"d_{c}" for c in self.CRITICS)]

    def _critic_logs(self, s_real, s_fake, terms, gp):
        """Minus the critics' adversarial losses (for ``wgan-gp`` the Wasserstein
        distance estimates), in total and per critic, and the penalty."""
        logs = {"w_dist": -gan_losses.total(terms)}
        if gp is not None:
            logs["gp"] = gp
        logs.update({f"d_{c}": -t for c, t in zip(self.CRITICS, terms)})
        return logs
