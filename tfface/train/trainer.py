"""The training regimes as Keras models that override ``train_step``/``test_step``.

One trainer serves every architecture: :class:`RestorationTrainer` trains a
generator against a pixel loss and, when a discriminator is given and the
adversarial weight is positive, against it as well (the GAN regime of the V-Net
and pix2pix papers). Losses and optimizers are injected through :meth:`compile`;
loss trackers are ``keras.metrics.Mean`` objects exposed through ``metrics`` so
``fit`` logs, resets and reports them per epoch.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfface import keras, losses, metrics


class RestorationTrainer(keras.Model):
    """Generator (+ optional discriminator) trained on dataset elements.

    Args:
        generator: maps ``batch[input_keys...]`` to an image in [-1, 1].
        discriminator: judges images (``None``: purely supervised training).
        input_keys: element keys fed to the generator, in its input order.
        target_key: element key of the ground truth.
        conditional: feed the discriminator (image, first generator input) pairs.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model | None = None,
        *,
        input_keys: tuple[str, ...] = ("occluded",),
        target_key: str = "clean",
        conditional: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.input_keys = tuple(input_keys)
        self.target_key = target_key
        self.conditional = conditional
        self._trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("g_loss", "pixel", "adv", "d_loss", "d_real", "d_fake",
                         "psnr", "ssim", "l1")
        }

    # -- Keras plumbing -------------------------------------------------------------
    def compile(
        self,
        g_optimizer: keras.optimizers.Optimizer,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        *,
        pixel_loss: str = "mse",
        pixel_weight: float = 100.0,
        adv_weight: float = 1.0,
        label_smoothing: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().compile(**kwargs)
        if adv_weight > 0 and (self.discriminator is None or d_optimizer is None):
            raise ValueError("adversarial training needs a discriminator and its optimizer")
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.pixel_loss_fn = losses.PIXEL_LOSSES[pixel_loss]
        self.pixel_weight = float(pixel_weight)
        self.adv_weight = float(adv_weight)
        self.label_smoothing = float(label_smoothing)

    @property
    def adversarial(self) -> bool:
        return self.discriminator is not None and self.adv_weight > 0

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        names = ["g_loss", "pixel", "psnr", "ssim", "l1"]
        if self.adversarial:
            names[1:1] = ["adv", "d_loss", "d_real", "d_fake"]
        return [self._trackers[n] for n in names]

    def call(self, inputs, training: bool = False):
        return self.generator(inputs, training=training)

    # -- steps ----------------------------------------------------------------------
    def _gen_inputs(self, batch: dict[str, tf.Tensor]):
        xs = [batch[k] for k in self.input_keys]
        return xs[0] if len(xs) == 1 else xs

    def _disc(self, image: tf.Tensor, batch: dict[str, tf.Tensor], training: bool):
        if self.conditional:
            return self.discriminator([image, batch[self.input_keys[0]]], training=training)
        return self.discriminator(image, training=training)

    def _update_quality(self, target: tf.Tensor, pred: tf.Tensor) -> None:
        self._trackers["psnr"].update_state(metrics.psnr(target, pred))
        self._trackers["ssim"].update_state(metrics.ssim(target, pred))
        self._trackers["l1"].update_state(metrics.l1(target, pred))

    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        target = batch[self.target_key]
        x = self._gen_inputs(batch)
        if not self.adversarial:
            with tf.GradientTape() as tape:
                fake = self.generator(x, training=True)
                pixel = self.pixel_loss_fn(target, fake)
                g_loss = self.pixel_weight * pixel
            grads = tape.gradient(g_loss, self.generator.trainable_variables)
            self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        else:
            # One generator forward pass feeds both losses; two tapes keep the
            # gradients of the two players apart.
            with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
                fake = self.generator(x, training=True)
                real_logits = self._disc(target, batch, training=True)
                fake_logits = self._disc(fake, batch, training=True)
                d_loss = losses.discriminator_loss(
                    real_logits, fake_logits, self.label_smoothing
                )
                adv = losses.generator_adv_loss(fake_logits)
                pixel = self.pixel_loss_fn(target, fake)
                g_loss = self.adv_weight * adv + self.pixel_weight * pixel
            g_grads = g_tape.gradient(g_loss, self.generator.trainable_variables)
            d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_variables)
            self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_variables))
            self.d_optimizer.apply_gradients(
                zip(d_grads, self.discriminator.trainable_variables)
            )
            self._trackers["adv"].update_state(adv)
            self._trackers["d_loss"].update_state(d_loss)
            self._trackers["d_real"].update_state(tf.reduce_mean(tf.sigmoid(real_logits)))
            self._trackers["d_fake"].update_state(tf.reduce_mean(tf.sigmoid(fake_logits)))
        self._trackers["g_loss"].update_state(g_loss)
        self._trackers["pixel"].update_state(pixel)
        self._update_quality(target, fake)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        target = batch[self.target_key]
        fake = self.generator(self._gen_inputs(batch), training=False)
        pixel = self.pixel_loss_fn(target, fake)
        self._trackers["pixel"].update_state(pixel)
        self._trackers["g_loss"].update_state(self.pixel_weight * pixel)
        self._update_quality(target, fake)
        return {n: self._trackers[n].result() for n in ("g_loss", "pixel", "psnr", "ssim", "l1")}
