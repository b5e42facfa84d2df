"""The WGAN-GP regime with a global and a local critic (Liu et al.; ``--arch wgan_gl``).

Each training step (one generator update, so step counts, checkpoints and resume work
as in every other run) does:

1. the generator's forward pass on the damaged faces;
2. ``n_critic`` critic updates on that batch with
   ``L_D = L_global + L_local + λ_GP (GP_global + GP_local)`` where
   ``L_x = E[D_x(fake)] - E[D_x(real)]`` (Wasserstein, as in the paper) and each
   ``GP_x = E[(‖∇D_x(x̂)‖₂ - 1)²]`` on random interpolations ``x̂`` of real and restored
   faces (Gulrajani et al.; a fresh interpolation per critic update). The critics
   model (:func:`tfface.models.wgan_gl.build_discriminator`) reads ``[image, mask]``:
   the local critic judges a fixed-size crop centred on the hole, the same crop for
   real and restored faces;
3. one generator update on ``pixel_weight · L1 + adv_weight · (-E[D_g(fake)] -
   E[D_l(fake)])`` (+ the optional content term), with the updated critics.

``train.pretrain_steps`` trains the generator on the pixel loss alone first; with
``adv_weight`` 0 the regime is plain supervised training.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfface import losses
from tfface.train.trainer import RestorationTrainer


class WGANTrainer(RestorationTrainer):
    """Generator + global/local critics trained with Wasserstein losses and a GP.

    Args:
        n_critic: critic updates per generator update.
        gp_weight: weight λ of each critic's gradient penalty.
        mask_key: element key of the hole mask the critics read.
        Other arguments as :class:`~tfface.train.trainer.RestorationTrainer`.
    """

    def __init__(self, generator, discriminator=None, *, n_critic: int = 5,
                 gp_weight: float = 10.0, mask_key: str = "mask", **kwargs: Any):
        super().__init__(generator, discriminator, **kwargs)
        if int(n_critic) < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        self.n_critic = int(n_critic)
        self.gp_weight = float(gp_weight)
        self.mask_key = mask_key

    @classmethod
    def options(cls, cfg) -> dict[str, Any]:
        """Constructor arguments taken from a run's config."""
        return {"n_critic": cfg.train.n_critic, "gp_weight": cfg.train.gp_weight}

    EXTRA_METRICS = ("gp", "w_dist", "d_global", "d_local")

    def _logged_names(self) -> list[str]:
        names = ["g_loss", "pixel"]
        if self.content_weight > 0:
            names.append("content")
        if self.adversarial:
            names += ["adv", "d_loss", "w_dist", "gp", "d_global", "d_local", "d_grad_norm"]
        names += ["g_grad_norm", "psnr", "ssim", "l1"]
        return names

    def _disc(self, image, batch, training: bool):
        return self.discriminator([image, batch[self.mask_key]], training=training)

    def _train_step(self, batch):
        return self._wgan_step(batch)

    def _critic_update(self, batch, real, fake):
        """One critic update; returns (loss, W distance, GP, global gap, local gap, grads)."""
        n = self._replicas()
        d_vars = self.discriminator.trainable_variables
        eps = tf.random.uniform([tf.shape(real)[0], 1, 1, 1])
        x_hat = real + eps * (fake - real)
        with tf.GradientTape() as d_tape:
            with tf.GradientTape(persistent=True) as gp_tape:
                gp_tape.watch(x_hat)
                s_hat = tf.cast(self._disc(x_hat, batch, training=True), tf.float32)
                s_global = tf.reduce_sum(s_hat[:, 0])
                s_local = tf.reduce_sum(s_hat[:, 1])
            gp = (losses.gradient_penalty(gp_tape.gradient(s_global, x_hat))
                  + losses.gradient_penalty(gp_tape.gradient(s_local, x_hat)))
            del gp_tape
            s_real = tf.cast(self._disc(real, batch, training=True), tf.float32)
            s_fake = tf.cast(self._disc(fake, batch, training=True), tf.float32)
            l_global = losses.wasserstein_critic_loss(s_real[:, 0], s_fake[:, 0])
            l_local = losses.wasserstein_critic_loss(s_real[:, 1], s_fake[:, 1])
            d_loss = l_global + l_local + self.gp_weight * gp
            replica = self._scaled(d_loss / n, self.d_optimizer)
        grads = self._gradients(d_tape, replica, d_vars, self.d_optimizer)
        self.d_optimizer.apply_gradients(zip(grads, d_vars))
        return d_loss, -(l_global + l_local), gp, -l_global, -l_local, grads

    def _wgan_step(self, batch):
        target = batch[self.target_key]
        diagnose = bool(self._diagnose)  # see RestorationTrainer.make_train_function
        logged: dict[str, tf.Tensor] = {}
        n = self._replicas()
        g_vars = self.generator.trainable_variables
        adversarial = self.adversarial and not self.pretraining
        with tf.GradientTape() as g_tape:
            fake = tf.cast(self.generator(self._gen_inputs(batch), training=True), tf.float32)
            if adversarial:
                with g_tape.stop_recording():
                    # The critics learn on this batch first (n_critic updates), then
                    # the generator is judged by the updated critics.
                    frozen = tf.stop_gradient(fake)
                    for _ in range(self.n_critic):
                        d_loss, w_dist, gp, d_g, d_l, d_grads = self._critic_update(
                            batch, target, frozen)
                scores = tf.cast(self._disc(fake, batch, training=True), tf.float32)
                adv = (losses.wasserstein_generator_loss(scores[:, 0])
                       + losses.wasserstein_generator_loss(scores[:, 1]))
                g_loss, pixel, content, _ = self._g_loss(target, fake)
                g_loss += self.adv_weight * adv
            else:
                g_loss, pixel, content, _ = self._g_loss(target, fake)
            g_replica = self._scaled(g_loss / n, self.g_optimizer)
        g_grads = self._gradients(g_tape, g_replica, g_vars, self.g_optimizer)
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars))
        if adversarial:
            logged.update(adv=adv, d_loss=d_loss, w_dist=w_dist, gp=gp, d_global=d_g,
                          d_local=d_l)
        logged.update(g_loss=g_loss, pixel=pixel)
        return self._finish_step(logged, diagnose, target, fake, g_grads,
                                 d_grads if adversarial else None, content)
