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


class MeanVector(keras.metrics.Metric):
    """Running means of several named values in two variables (sum and count vectors).

    The trainer's step logs up to a dozen scalars; as separate ``Mean`` metrics that
    is ~6 small ops and two variable writes each, which for small models is a
    measurable share of a step (part of why the framework step was slower than the
    tutorial's plain loop). Here one step's values cost one stack and two writes.
    ``update({name: tensor})`` averages over all elements like ``Mean``.
    """

    def __init__(self, names, name: str = "means", **kwargs):
        super().__init__(name=name, **kwargs)
        self.names = tuple(names)
        self._index = {n: i for i, n in enumerate(self.names)}
        shape = (len(self.names),)
        self.total = self.add_weight("total", shape=shape, initializer="zeros")
        self.count = self.add_weight("count", shape=shape, initializer="zeros")

    def update(self, values: dict) -> None:
        sums = [tf.constant(0.0)] * len(self.names)
        counts = [tf.constant(0.0)] * len(self.names)
        for k, v in values.items():
            v = tf.cast(v, tf.float32)
            i = self._index[k]
            sums[i] = tf.reduce_sum(v)
            counts[i] = tf.cast(tf.size(v), tf.float32)
        self.total.assign_add(tf.stack(sums))
        self.count.assign_add(tf.stack(counts))

    def update_state(self, values: dict, sample_weight=None) -> None:  # Keras API
        self.update(values)

    def result(self):
        return tf.math.divide_no_nan(self.total, self.count)

    def results(self, names) -> dict:
        r = tf.unstack(self.result())
        return {n: r[self._index[n]] for n in names}

    def reset_state(self) -> None:
        self.total.assign(tf.zeros_like(self.total))
        self.count.assign(tf.zeros_like(self.count))

    def get_config(self):
        return dict(super().get_config(), names=list(self.names))


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

    EXTRA_METRICS: tuple[str, ...] = ()
    """Names a subclass logs besides the shared ones (see :meth:`_logged_names`)."""

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
        # The step returns means already synchronized over the replicas (MeanVector
        # results are read in cross-replica context); Keras' default under a strategy
        # ("auto" = "sum") would add them up again: N replicas logged N x the loss.
        self.distribute_reduction_method = "first"
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
        self._diagnose = True
        """Generator-only pixel-loss phase (compiled into the step; see :meth:`set_pretraining`)."""
        names = ("g_loss", "pixel", "content", "adv", "d_loss", "d_real", "d_fake",
                 "g_grad_norm", "d_grad_norm", "psnr", "ssim", "l1") + _SR_METRICS
        self._means = MeanVector(names + tuple(self.EXTRA_METRICS))

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

    def _logged_names(self) -> list[str]:
        names = ["g_loss", "pixel"]
        if self.content_weight > 0:
            names.append("content")
        if self.adversarial:
            names += ["adv", "d_loss", "d_real", "d_fake", "d_grad_norm"]
        names += ["g_grad_norm", "psnr", "ssim", "l1"]
        return names

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self._means]  # what fit/evaluate reset at epoch start

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

    @staticmethod
    def _quality(target: tf.Tensor, pred: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"psnr": metrics.psnr(target, pred), "ssim": metrics.ssim(target, pred),
                "l1": metrics.l1(target, pred)}

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

    def make_train_function(self, force: bool = False):
        """Two compiled steps, with and without the training diagnostics.

        Gradient norms and train PSNR/L1 cost a pass over all gradients and, inside
        one graph, a ``tf.cond`` per value, which also blocks grappler's op fusion:
        measured framework/plain-loop throughput 0.86 for pix2pix tiny with the conds.
        Instead the step is traced twice (``_diagnose`` is read at trace time) and
        the diagnostic variant runs on every ``log_every``-th call only.
        """
        if self.train_function is not None and not force:
            return self.train_function
        self._diagnose = False
        fast = super().make_train_function(force=True)
        self.train_function = None
        slow = super().make_train_function(force=True)
        calls = [0]

        def train_function(iterator):
            diagnose = calls[0] % self.log_every == 0
            calls[0] += 1
            self._diagnose = diagnose  # read while the chosen function traces
            try:
                return (slow if diagnose else fast)(iterator)
            finally:
                self._diagnose = True

        self.train_function = train_function
        return train_function

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
                self._xla_step = {}
            key = bool(self._diagnose)
            if key not in self._xla_step:
                self._xla_step[key] = tf.function(self._train_step, jit_compile=True,
                                                  reduce_retracing=True)
            return self._xla_step[key](batch)
        return self._train_step(batch)

    def _train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        target = batch[self.target_key]
        # Diagnostics (gradient norms, train PSNR/L1) only in the variant traced with
        # _diagnose (see make_train_function); direct calls always include them.
        diagnose = bool(self._diagnose)
        logged: dict[str, tf.Tensor] = {}
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
            d_grads = None
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
            logged.update(adv=adv, d_loss=d_loss, d_real=tf.reduce_mean(tf.sigmoid(real_logits)),
                          d_fake=tf.reduce_mean(tf.sigmoid(fake_logits)))
        logged.update(g_loss=g_loss, pixel=pixel)
        return self._finish_step(logged, diagnose, target, fake, g_grads, d_grads, content)

    def _finish_step(self, logged, diagnose, target, fake, g_grads, d_grads, content):
        """The shared end of every train step: diagnostics (on the diagnostic variant
        only; SSIM, a blur per image, is left to validation), the content term, the EMA
        update, one write of the step means, and the logs."""
        n = self._replicas()
        if diagnose:
            # Gradient norms of the global-batch loss (per replica × replicas): a
            # discriminator that overpowers the generator shows as d_loss → 0 with
            # g_grad_norm of the adversarial term collapsing or exploding.
            if d_grads is not None:
                logged["d_grad_norm"] = tf.linalg.global_norm(d_grads) * n
            logged["g_grad_norm"] = tf.linalg.global_norm(g_grads) * n
            logged["psnr"] = tf.reduce_mean(metrics.psnr(target, fake))
            logged["l1"] = tf.reduce_mean(metrics.l1(target, fake))
        if content is not None:
            logged["content"] = content
        if self.ema_generator is not None:
            self._update_ema()
        self._means.update(logged)
        return self._means.results(n for n in self._logged_names() if n not in _TRAIN_SKIP)

    def test_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        target = batch[self.target_key]
        fake = tf.cast(self.eval_generator(self._gen_inputs(batch), training=False), tf.float32)
        pixel = self.pixel_loss_fn(target, fake)
        logged = dict(self._quality(target, fake), pixel=pixel, g_loss=self.pixel_weight * pixel)
        names = ["g_loss", "pixel", "psnr", "ssim", "l1"]
        if self.sr_scale:
            b = self.sr_scale
            up = metrics.bicubic_upsample(batch[self.input_keys[0]], target.shape[1])
            logged.update(psnr_y=metrics.psnr_y(target, fake, b),
                          ssim_y=metrics.ssim_y(target, fake, b),
                          bicubic_psnr=metrics.psnr(target, up),
                          bicubic_psnr_y=metrics.psnr_y(target, up, b),
                          bicubic_ssim_y=metrics.ssim_y(target, up, b))
            names += list(_SR_METRICS)
        self._means.update(logged)
        return self._means.results(names)


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
