"""Trainers: one per training regime, never one per architecture.

:class:`RestorationTrainer` trains a generator against a pixel loss, an optional
content (perceptual) loss and, when a discriminator is given and the adversarial
weight is positive, against it as well (the GAN regime of the V-Net, pix2pix and
SRGAN papers). Losses and optimizers are injected through :meth:`compile`; loss
trackers are ``keras.metrics.Mean`` objects exposed through ``metrics`` so ``fit``
logs, resets and reports them per epoch.

The step is written for ``tf.distribute``: each replica scales its losses by
``1 / num_replicas`` before differentiating (the optimizers sum gradients across
replicas, so the update equals that of one global batch), and with mixed precision
each optimizer's loss scale is applied and removed (``LossScaleOptimizer``).
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

from tfface import keras, losses, metrics

_SR_METRICS = ("psnr_y", "ssim_y", "bicubic_psnr", "bicubic_psnr_y", "bicubic_ssim_y")
_TRAIN_SKIP = _SR_METRICS + ("ssim",)  # validation-only metrics


class RestorationTrainer(keras.Model):
    """Generator (+ optional discriminator) trained on dataset elements.

    Args:
        generator: maps ``batch[input_keys...]`` to an image in [-1, 1].
        discriminator: judges images (``None``: purely supervised training).
        input_keys: element keys fed to the generator, in its input order.
        target_key: element key of the ground truth.
        conditional: feed the discriminator (image, first generator input) pairs.
        sr_scale: super-resolution factor; adds the SR validation metrics (Y-channel
            PSNR/SSIM with a ``sr_scale``-pixel border crop, and the bicubic baseline).
        ema_decay: keep an exponential moving average of the generator weights
            (``ema_generator``), used for validation, saved weights and export.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model | None = None,
        *,
        input_keys: tuple[str, ...] = ("occluded",),
        target_key: str = "clean",
        conditional: bool = False,
        sr_scale: int | None = None,
        ema_decay: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.input_keys = tuple(input_keys)
        self.target_key = target_key
        self.conditional = conditional
        self.sr_scale = int(sr_scale) if sr_scale else None
        self.ema_decay = float(ema_decay)
        self.ema_generator = None
        if self.ema_decay > 0:
            self.ema_generator = keras.models.clone_model(generator)
            self.ema_generator.set_weights(generator.get_weights())
            self.ema_generator.trainable = False
        self.pretraining = False
        self.xla_train_step = False
        self._xla_step = None
        """Generator-only pixel-loss phase (compiled into the step; see :meth:`set_pretraining`)."""
        names = ("g_loss", "pixel", "content", "adv", "d_loss", "d_real", "d_fake",
                 "g_grad_norm", "d_grad_norm", "psnr", "ssim", "l1") + _SR_METRICS
        self._trackers = {name: keras.metrics.Mean(name=name) for name in names}

    @property
    def eval_generator(self) -> keras.Model:
        """The generator used for validation, saved weights and export (EMA when on)."""
        return self.ema_generator if self.ema_generator is not None else self.generator

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
        content_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None,
        content_weight: float = 0.0,
        jit_compile: bool = False,
        log_every: int = 10,
        **kwargs: Any,
    ) -> None:
        """Inject optimizers, loss choices and weights.

        ``jit_compile`` compiles the train step with XLA (like Keras' own flag, which
        would also compile evaluation; the SR metrics use bicubic resizing, which has
        no XLA kernel, and evaluation is not the hot path). ``log_every``: compute the
        training diagnostics (gradient norms, PSNR, L1) every N steps.
        """
        super().compile(**kwargs)
        self.xla_train_step = bool(jit_compile)
        self._xla_step = None
        self.log_every = max(1, int(log_every))
        if adv_weight > 0 and (self.discriminator is None or d_optimizer is None):
            raise ValueError("adversarial training needs a discriminator and its optimizer")
        if content_weight > 0 and content_fn is None:
            raise ValueError("content_weight > 0 needs a content_fn")
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.pixel_loss_fn = losses.PIXEL_LOSSES[pixel_loss]
        self.pixel_weight = float(pixel_weight)
        self.adv_weight = float(adv_weight)
        self.label_smoothing = float(label_smoothing)
        self.content_fn = content_fn
        self.content_weight = float(content_weight) if content_fn is not None else 0.0

    @property
    def adversarial(self) -> bool:
        return self.discriminator is not None and self.adv_weight > 0

    def set_pretraining(self, on: bool) -> None:
        """Switch the pre-training phase on/off; the step is retraced at the next call."""
        if bool(on) != self.pretraining:
            self.pretraining = bool(on)
            self.train_function = None
            self._xla_step = None

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        names = ["g_loss", "pixel"]
        if self.content_weight > 0:
            names.append("content")
        if self.adversarial:
            names += ["adv", "d_loss", "d_real", "d_fake", "d_grad_norm"]
        names += ["g_grad_norm", "psnr", "ssim", "l1"]
        if self.sr_scale:  # validation only (listed here so that fit resets them)
            names += list(_SR_METRICS)
        return [self._trackers[n] for n in names]

    def call(self, inputs, training: bool = False):
        return self.generator(inputs, training=training)

    # -- helpers --------------------------------------------------------------------
    def _gen_inputs(self, batch: dict[str, tf.Tensor]):
        xs = [batch[k] for k in self.input_keys]
        return xs[0] if len(xs) == 1 else xs

    def _disc(self, image: tf.Tensor, batch: dict[str, tf.Tensor], training: bool):
        if self.conditional:
            return self.discriminator([image, batch[self.input_keys[0]]], training=training)
        return self.discriminator(image, training=training)

    def _update_quality(self, target: tf.Tensor, pred: tf.Tensor, ssim: bool = True) -> None:
        self._trackers["psnr"].update_state(metrics.psnr(target, pred))
        if ssim:
            self._trackers["ssim"].update_state(metrics.ssim(target, pred))
        self._trackers["l1"].update_state(metrics.l1(target, pred))

    @staticmethod
    def _replicas() -> int:
        return tf.distribute.get_strategy().num_replicas_in_sync

    @staticmethod
    def _scaled(loss, optimizer):
        """The loss to differentiate (inside the tape): times the loss scale if any."""
        if isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer):
            return optimizer.get_scaled_loss(loss)
        return loss

    @staticmethod
    def _gradients(tape, scaled_loss, variables, optimizer):
        grads = tape.gradient(scaled_loss, variables)
        if isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer):
            grads = optimizer.get_unscaled_gradients(grads)
        return grads

    def _g_loss(self, target, fake, fake_logits=None):
        pixel = self.pixel_loss_fn(target, fake)
        if self.pretraining:
            return pixel, pixel, None, None
        g_loss = self.pixel_weight * pixel
        content = adv = None
        if self.content_weight > 0:
            content = self.content_fn(target, fake)
            g_loss += self.content_weight * content
        if fake_logits is not None:
            adv = losses.generator_adv_loss(fake_logits)
            g_loss += self.adv_weight * adv
        return g_loss, pixel, content, adv

    def _sometimes(self, name: str, now: tf.Tensor, value: Callable[[], tf.Tensor]) -> None:
        """Track ``value()`` only when ``now`` (it is not computed otherwise)."""
        v = tf.cond(now, lambda: tf.cast(value(), tf.float32), lambda: tf.constant(0.0))
        self._trackers[name].update_state(v, sample_weight=tf.cast(now, tf.float32))

    def _update_ema(self) -> None:
        decay = self.ema_decay

        def update(strategy):
            for e, w in zip(self.ema_generator.weights, self.generator.weights):
                strategy.extended.update(
                    e, lambda v, x: v.assign(decay * v + (1.0 - decay) * tf.cast(x, v.dtype)),
                    args=(w,),
                )

        tf.distribute.get_replica_context().merge_call(update)

    # -- steps ----------------------------------------------------------------------
    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        if self.xla_train_step:
            if self._xla_step is None:
                self._xla_step = tf.function(self._train_step, jit_compile=True,
                                             reduce_retracing=True)
            return self._xla_step(batch)
        return self._train_step(batch)

    def _train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        target = batch[self.target_key]
        # Diagnostics (gradient norms, train PSNR/L1) every `log_every` steps only: on
        # every step they cost ~5-10 % of a step (a pass over all gradients).
        log_now = tf.equal(self.g_optimizer.iterations % self.log_every, 0)
        x = self._gen_inputs(batch)
        n = self._replicas()
        g_vars = self.generator.trainable_variables
        if not self.adversarial or self.pretraining:
            with tf.GradientTape() as tape:
                fake = tf.cast(self.generator(x, training=True), tf.float32)
                g_loss, pixel, content, _ = self._g_loss(target, fake)
                replica_loss = self._scaled(g_loss / n, self.g_optimizer)
            g_grads = self._gradients(tape, replica_loss, g_vars, self.g_optimizer)
            self.g_optimizer.apply_gradients(zip(g_grads, g_vars))
        else:
            d_vars = self.discriminator.trainable_variables
            # One generator forward pass feeds both losses; two tapes keep the
            # gradients of the two players apart.
            with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
                fake = tf.cast(self.generator(x, training=True), tf.float32)
                real_logits = self._disc(target, batch, training=True)
                fake_logits = self._disc(fake, batch, training=True)
                d_loss = losses.discriminator_loss(
                    real_logits, fake_logits, self.label_smoothing
                )
                g_loss, pixel, content, adv = self._g_loss(target, fake, fake_logits)
                g_replica = self._scaled(g_loss / n, self.g_optimizer)
                d_replica = self._scaled(d_loss / n, self.d_optimizer)
            g_grads = self._gradients(g_tape, g_replica, g_vars, self.g_optimizer)
            d_grads = self._gradients(d_tape, d_replica, d_vars, self.d_optimizer)
            self.g_optimizer.apply_gradients(zip(g_grads, g_vars))
            self.d_optimizer.apply_gradients(zip(d_grads, d_vars))
            self._trackers["adv"].update_state(adv)
            self._trackers["d_loss"].update_state(d_loss)
            self._trackers["d_real"].update_state(tf.reduce_mean(tf.sigmoid(real_logits)))
            self._trackers["d_fake"].update_state(tf.reduce_mean(tf.sigmoid(fake_logits)))
            # Gradient norms of the global-batch loss (per replica × replicas): a
            # discriminator that overpowers the generator shows as d_loss → 0 with
            # g_grad_norm of the adversarial term collapsing or exploding.
            self._sometimes("d_grad_norm", log_now, lambda: tf.linalg.global_norm(d_grads) * n)
        self._sometimes("g_grad_norm", log_now, lambda: tf.linalg.global_norm(g_grads) * n)
        if content is not None:
            self._trackers["content"].update_state(content)
        if self.ema_generator is not None:
            self._update_ema()
        self._trackers["g_loss"].update_state(g_loss)
        self._trackers["pixel"].update_state(pixel)
        # SSIM (a blur per image) is left to validation.
        self._sometimes("psnr", log_now, lambda: tf.reduce_mean(metrics.psnr(target, fake)))
        self._sometimes("l1", log_now, lambda: tf.reduce_mean(metrics.l1(target, fake)))
        return {m.name: m.result() for m in self.metrics if m.name not in _TRAIN_SKIP}

    def test_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        target = batch[self.target_key]
        fake = tf.cast(self.eval_generator(self._gen_inputs(batch), training=False), tf.float32)
        pixel = self.pixel_loss_fn(target, fake)
        self._trackers["pixel"].update_state(pixel)
        self._trackers["g_loss"].update_state(self.pixel_weight * pixel)
        self._update_quality(target, fake)
        names = ["g_loss", "pixel", "psnr", "ssim", "l1"]
        if self.sr_scale:
            b = self.sr_scale
            up = metrics.bicubic_upsample(batch[self.input_keys[0]], target.shape[1])
            self._trackers["psnr_y"].update_state(metrics.psnr_y(target, fake, b))
            self._trackers["ssim_y"].update_state(metrics.ssim_y(target, fake, b))
            self._trackers["bicubic_psnr"].update_state(metrics.psnr(target, up))
            self._trackers["bicubic_psnr_y"].update_state(metrics.psnr_y(target, up, b))
            self._trackers["bicubic_ssim_y"].update_state(metrics.ssim_y(target, up, b))
            names += list(_SR_METRICS)
        return {n: self._trackers[n].result() for n in names}


# -- learning-rate schedules ---------------------------------------------------------

@keras.utils.register_keras_serializable(package="tfface")
class ConstantThenLinear(keras.optimizers.schedules.LearningRateSchedule):
    """``lr`` for ``hold_steps``, then linearly to 0 at ``total_steps`` (pix2pix)."""

    def __init__(self, lr: float, hold_steps: int, total_steps: int):
        self.lr, self.hold_steps, self.total_steps = float(lr), int(hold_steps), int(total_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        span = max(1, self.total_steps - self.hold_steps)
        frac = tf.clip_by_value((step - self.hold_steps) / span, 0.0, 1.0)
        return self.lr * (1.0 - frac)

    def get_config(self):
        return {"lr": self.lr, "hold_steps": self.hold_steps, "total_steps": self.total_steps}


def learning_rate(kind: str, lr: float, *, decay_steps: int | None, decay_rate: float,
                  total_steps: int):
    """The learning rate (a float or a schedule of the optimizer's step) named ``kind``."""
    if kind == "constant":
        return float(lr)
    if kind == "step":
        return keras.optimizers.schedules.ExponentialDecay(
            float(lr), int(decay_steps), float(decay_rate), staircase=True)
    if kind == "linear":
        return ConstantThenLinear(lr, int(decay_steps), total_steps)
    if kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(float(lr), max(1, int(total_steps)))
    raise ValueError(f"unknown learning-rate schedule '{kind}'")


def make_optimizer(lr, beta_1: float, mixed_precision: bool = False):
    """Adam, wrapped for dynamic loss scaling under mixed precision."""
    opt = keras.optimizers.Adam(lr, beta_1=beta_1)
    if mixed_precision:
        opt = keras.mixed_precision.LossScaleOptimizer(opt)
    return opt
