"""Trainers: one per training regime, never one per architecture.

:class:`RestorationTrainer` trains a generator against a pixel loss, an optional
content (perceptual) loss and, when a discriminator is given and the adversarial
weight is positive, against it as well (the GAN regime of the V-Net, pix2pix and
SRGAN papers). Losses and optimizers are injected through :meth:`compile`, the
adversarial loss as an entry of :data:`tfface.train.gan_losses.GAN_LOSSES`; the step
means are kept in one :class:`MeanVector` exposed through ``metrics`` so ``fit``
logs, resets and reports them per epoch.

A regime subclass overrides only the step hooks that differ: :meth:`~RestorationTrainer.forward`
(the generator's outputs), :meth:`~RestorationTrainer.generator_loss` (its supervised
terms), :meth:`~RestorationTrainer.stage_metrics` (extra scores), and
:meth:`~RestorationTrainer.discriminator_step` (how the discriminator learns within a
step); its own knobs are an ``Options`` dataclass (:class:`RegimeOptions`) read from
the flat ``train.*`` keys of the same names.

The step is written for ``tf.distribute``: each replica scales its losses by
``1 / num_replicas`` before differentiating (the optimizers sum gradients across
replicas, so the update equals that of one global batch), and with mixed precision
each optimizer's loss scale is applied and removed (``LossScaleOptimizer``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import tensorflow as tf

from tfface import keras, losses, metrics
from tfface.train import gan_losses

_SR_METRICS = ("psnr_y", "ssim_y", "bicubic_psnr", "bicubic_psnr_y", "bicubic_ssim_y",
               "sharpness", "bicubic_sharpness")
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


@dataclasses.dataclass(frozen=True)
class RegimeOptions:
    """The options of one training regime (none for the plain GAN regime).

    A subclass declares its fields with defaults; :meth:`from_config` reads each from
    the flat ``train`` key of the same name (``train.n_critic`` ->
    ``WGANOptions.n_critic``), the form every run's ``config.json`` has.
    """

    @classmethod
    def from_config(cls, cfg) -> "RegimeOptions":
        return cls(**{f.name: getattr(cfg.train, f.name) for f in dataclasses.fields(cls)})


class RestorationTrainer(keras.Model):
    """Generator (+ optional discriminator) trained on dataset elements.

    Args:
        generator: maps ``batch[input_keys...]`` to an image in [-1, 1].
        discriminator: judges images (``None``: purely supervised training).
        input_keys: element keys fed to the generator, in its input order.
        target_key: element key of the ground truth.
        disc_keys: element keys the discriminator reads next to the judged image
            (a conditional GAN: ``(input_keys[0],)``).
        options: the regime's :class:`RegimeOptions` (default: ``Options()``).
        sr_scale: super-resolution factor (``None`` or 1: no upscaling); adds the SR
            validation metrics (Y-channel PSNR/SSIM with a ``sr_scale``-pixel border
            crop, and the bicubic baseline).
        ema_decay: keep an exponential moving average of the generator weights
            (``ema_generator``), used for validation, saved weights and export.
        critic_shift: the discriminator sees every image (and its condition) shifted
            by one random offset in ``[-critic_shift, critic_shift]`` pixels per axis,
            drawn per step (``train.critic_shift``; 0: off).
    """

    Options: type[RegimeOptions] = RegimeOptions
    GAN_LOSS = "vanilla"
    """The regime's adversarial loss when :meth:`compile` is given none."""
    GEN_METRICS: tuple[str, ...] = ()
    """Generator terms a regime logs after ``pixel`` (training and validation)."""
    STEP_METRICS: tuple[str, ...] = ()
    """Scores a regime logs after the image metrics (training and validation)."""
    EXTRA_METRICS: tuple[str, ...] = ()
    """Other names a regime logs (see :meth:`_critic_names`)."""

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model | None = None,
        *,
        input_keys: tuple[str, ...] = ("occluded",),
        target_key: str = "clean",
        disc_keys: tuple[str, ...] = (),
        sr_scale: int | None = None,
        ema_decay: float = 0.0,
        critic_shift: int = 0,
        options: RegimeOptions | None = None,
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
        self.disc_keys = tuple(disc_keys)
        self.options = options if options is not None else self.Options()
        self.sr_scale = int(sr_scale) if sr_scale and int(sr_scale) > 1 else None
        self.ema_decay = float(ema_decay)
        self.critic_shift = int(critic_shift)
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
        names = ("g_loss", "pixel", "content", "identity", "adv", "d_loss", "d_real", "d_fake",
                 "gp", "g_grad_norm", "d_grad_norm", "psnr", "ssim", "l1",
                 "hole_sharpness", "grid", "spectral", "mirror") + _SR_METRICS
        self._means = MeanVector(names + self.GEN_METRICS + self.STEP_METRICS
                                 + self.EXTRA_METRICS)

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
        gan_loss: str | gan_losses.GANLoss | None = None,
        gp_weight: float = 10.0,
        content_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None,
        content_weight: float = 0.0,
        identity_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None,
        identity_weight: float = 0.0,
        grid_weight: float = 0.0,
        grid_period: int = 8,
        spectral_weight: float = 0.0,
        spectral_patch: int = 32,
        mirror_weight: float = 0.0,
        jit_compile: bool = False,
        log_every: int = 10,
        **kwargs: Any,
    ) -> None:
        """Inject optimizers, loss choices and weights.

        ``gan_loss`` names the adversarial loss (default: the regime's
        :attr:`GAN_LOSS`); ``gp_weight`` weighs each critic's gradient penalty when the
        loss has one (``wgan-gp``).

        ``jit_compile`` compiles the train step with XLA (like Keras' own flag, which
        would also compile evaluation; the SR metrics use bicubic resizing, which has
        no XLA kernel, and evaluation is not the hot path). ``log_every``: compute the
        training diagnostics (gradient norms, PSNR, L1) every N steps.
        ``grid_weight`` weighs :func:`tfface.losses.grid_pattern` of the restoration in
        the hole (inpainting batches, which carry ``mask``), folded at ``grid_period`` px.
        ``spectral_weight`` weighs :func:`tfface.losses.spectral_amplitude` of target and
        restoration per ``spectral_patch`` px square (any task).
        ``mirror_weight`` weighs the L1 distance of the restoration from the EMA
        generator's mirror self-ensemble (:meth:`_mirror_teacher`; needs ``ema_decay`` > 0).
        ``identity_fn`` (with ``identity_weight`` > 0) is a face-identity distance of
        target and restoration (:func:`tfface.identity.loss.make_identity_fn`),
        added like the content term.
        """
        super().compile(**kwargs)
        self.xla_train_step = bool(jit_compile)
        self._xla_step = None
        self.log_every = max(1, int(log_every))
        if adv_weight > 0 and (self.discriminator is None or d_optimizer is None):
            raise ValueError("adversarial training needs a discriminator and its optimizer")
        if content_weight > 0 and content_fn is None:
            raise ValueError("content_weight > 0 needs a content_fn")
        if identity_weight > 0 and identity_fn is None:
            raise ValueError("identity_weight > 0 needs an identity_fn")
        if mirror_weight > 0 and (self.ema_generator is None or type(self).generator_loss
                                  is not RestorationTrainer.generator_loss):
            raise ValueError("mirror_weight > 0 needs an EMA generator (ema_decay > 0) and the "
                             "plain generator loss (not the unmask regime's)")
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.pixel_loss_fn = losses.PIXEL_LOSSES[pixel_loss]
        self.pixel_weight = float(pixel_weight)
        self.adv_weight = float(adv_weight)
        self.label_smoothing = float(label_smoothing)
        self.gan_loss = gan_losses.get_gan_loss(gan_loss or self.GAN_LOSS)
        self.gp_weight = float(gp_weight)
        self.content_fn = content_fn
        self.content_weight = float(content_weight) if content_fn is not None else 0.0
        self.identity_fn = identity_fn
        self.identity_weight = float(identity_weight) if identity_fn is not None else 0.0
        self.grid_weight = float(grid_weight)
        self.grid_period = int(grid_period)
        self.spectral_weight = float(spectral_weight)
        self.spectral_patch = int(spectral_patch)
        self.mirror_weight = float(mirror_weight)

    @property
    def adversarial(self) -> bool:
        return self.discriminator is not None and self.adv_weight > 0

    def set_pretraining(self, on: bool) -> None:
        """Switch the pre-training phase on/off; the step is retraced at the next call."""
        if bool(on) != self.pretraining:
            self.pretraining = bool(on)
            self.train_function = None
            self._xla_step = None

    def _critic_names(self) -> list[str]:
        """What :meth:`_critic_logs` logs."""
        return ["d_real", "d_fake"] + (["gp"] if self.gan_loss.gradient_penalty else [])

    def _logged_names(self) -> list[str]:
        names = ["g_loss", "pixel", *self.GEN_METRICS]
        if self.content_weight > 0:
            names.append("content")
        if self.identity_weight > 0:
            names.append("identity")
        if self.grid_weight > 0:
            names.append("grid")
        if self.spectral_weight > 0:
            names.append("spectral")
        if self.mirror_weight > 0:
            names.append("mirror")
        if self.adversarial:
            names += ["adv", "d_loss", *self._critic_names(), "d_grad_norm"]
        names += ["g_grad_norm", "psnr", "ssim", "l1", *self.STEP_METRICS]
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

    @property
    def conditional(self) -> bool:
        return bool(self.disc_keys)

    _CRITIC_OFFSET = "critic_offset"
    """Batch key of the step's shift of the discriminator's view (see :meth:`_shifted`)."""

    def _disc(self, image: tf.Tensor, batch: dict[str, tf.Tensor], training: bool):
        views = [image, *(batch[k] for k in self.disc_keys)]
        offset = batch.get(self._CRITIC_OFFSET)
        if offset is not None:
            views = [self._shifted(v, offset) for v in views]
        return self.discriminator(views if self.disc_keys else views[0], training=training)

    def _with_critic_offset(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """``batch`` with this step's random shift of the discriminator's view (a copy;
        unchanged when ``critic_shift`` is 0)."""
        if self.critic_shift <= 0:
            return batch
        s = self.critic_shift
        return dict(batch, **{self._CRITIC_OFFSET: tf.random.uniform([2], 0, 2 * s + 1,
                                                                     dtype=tf.int32)})

    def _shifted(self, image: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
        """``image`` ([B, H, W, C]) moved by ``offset - critic_shift`` pixels on each axis,
        the border reflected, the size kept."""
        s = self.critic_shift
        padded = tf.pad(image, [[0, 0], [s, s], [s, s], [0, 0]], mode="REFLECT")
        shape = tf.shape(image)
        return tf.slice(padded, tf.stack([0, offset[0], offset[1], 0]), shape)

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

    # -- step hooks (a regime overrides what differs) ---------------------------------
    def forward(self, batch: dict[str, tf.Tensor], training: bool = True) -> dict[str, tf.Tensor]:
        """The generator's outputs on ``batch`` as float32: ``restored`` (the image that is
        judged and scored) and any stage outputs the regime's losses read. Validation
        (``training=False``) runs :attr:`eval_generator`."""
        model = self.generator if training else self.eval_generator
        return {"restored": tf.cast(model(self._gen_inputs(batch), training=training),
                                    tf.float32)}

    def generator_loss(self, batch, out) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """The generator's supervised loss and its logged terms: ``pixel_weight`` · pixel
        (+ ``content_weight`` · content, identity and spectral terms); in pre-training the
        pixel loss alone."""
        target = batch[self.target_key]
        pixel = self.pixel_loss_fn(target, out["restored"])
        if self.pretraining:
            return pixel, {"pixel": pixel}
        loss, logged = self._add_content(self.pixel_weight * pixel, {"pixel": pixel}, target,
                                         out["restored"])
        if self.grid_weight > 0 and "mask" in batch:
            logged["grid"] = losses.grid_pattern(target, out["restored"], batch["mask"],
                                                 period=self.grid_period)
            loss += self.grid_weight * logged["grid"]
        if self.mirror_weight > 0:
            teacher = self._mirror_teacher(batch)
            logged["mirror"] = tf.reduce_mean(tf.abs(out["restored"] - teacher))
            loss += self.mirror_weight * logged["mirror"]
        return loss, logged

    def _mirror_teacher(self, batch: dict[str, tf.Tensor]) -> tf.Tensor:
        """The EMA generator's mirror self-ensemble on ``batch``: the mean of its output on
        the inputs and, mirrored back, on the inputs mirrored left to right (every input is
        an image, [B, H, W, C]), gradients stopped."""
        def flip(t):
            return tf.reverse(t, axis=[2])

        inputs = self._gen_inputs(batch)
        teacher = self.ema_generator
        plain = tf.cast(teacher(inputs, training=False), tf.float32)
        mirrored = flip(tf.cast(teacher(tf.nest.map_structure(flip, inputs), training=False),
                                tf.float32))
        return tf.stop_gradient(0.5 * (plain + mirrored))

    def _add_content(self, loss, logged, target, image):
        if self.content_weight > 0:
            logged["content"] = self.content_fn(target, image)
            loss += self.content_weight * logged["content"]
        if self.identity_weight > 0:
            logged["identity"] = self.identity_fn(target, image)
            loss += self.identity_weight * logged["identity"]
        if self.spectral_weight > 0:
            logged["spectral"] = losses.spectral_amplitude(target, image, self.spectral_patch)
            loss += self.spectral_weight * logged["spectral"]
        return loss, logged

    def stage_metrics(self, batch, out) -> dict[str, tf.Tensor]:
        """A regime's scores of ``out`` (:attr:`GEN_METRICS`, :attr:`STEP_METRICS`), logged
        in validation; training logs what :meth:`generator_loss` returns."""
        return {}

    def discriminator_step(self, batch, real, fake, g_tape):
        """The discriminator's part of an adversarial step (inside the generator's tape).

        Returns ``(fake_scores, logs, d_grads, apply)``: the discriminator's scores of
        ``fake`` that the generator's adversarial term reads, the logged values, the
        discriminator's gradients and whether the step still applies them (after the
        generator's update). Here both players learn from the same forward pass.
        """
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as d_tape:
            d_loss, logs, fake_scores = self.discriminator_loss(batch, real, fake)
            replica = self._scaled(d_loss / self._replicas(), self.d_optimizer)
        grads = self._gradients(d_tape, replica, d_vars, self.d_optimizer)
        return fake_scores, logs, grads, True

    def discriminator_loss(self, batch, real, fake):
        """``(loss, logs, fake scores)`` of the discriminator on ``real`` and ``fake``: the
        adversarial loss summed over its critics (:func:`~tfface.train.gan_losses.heads`),
        plus ``gp_weight`` times their gradient penalties when the loss has one."""
        gp = self._gradient_penalty(batch, real, fake) if self.gan_loss.gradient_penalty \
            else None
        s_real = self._disc(real, batch, training=True)
        s_fake = self._disc(fake, batch, training=True)
        terms = [self.gan_loss.discriminator(r, f, self.label_smoothing)
                 for r, f in zip(gan_losses.heads(s_real), gan_losses.heads(s_fake))]
        d_loss = gan_losses.total(terms)
        if gp is not None:
            d_loss = d_loss + self.gp_weight * gp
        return d_loss, dict(self._critic_logs(s_real, s_fake, terms, gp), d_loss=d_loss), s_fake

    def _gradient_penalty(self, batch, real, fake):
        """Sum over the critics of E[(‖∇D(x̂)‖₂ - 1)²] at random interpolations x̂ of
        ``real`` and ``fake`` (a fresh interpolation per call)."""
        eps = tf.random.uniform([tf.shape(real)[0], 1, 1, 1])
        x_hat = real + eps * (fake - real)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x_hat)
            scores = tf.cast(self._disc(x_hat, batch, training=True), tf.float32)
            sums = [tf.reduce_sum(h) for h in gan_losses.heads(scores)]
        gp = gan_losses.total([losses.gradient_penalty(tape.gradient(s, x_hat)) for s in sums])
        del tape
        return gp

    def _critic_logs(self, s_real, s_fake, terms, gp) -> dict[str, tf.Tensor]:
        logs = {"d_real": tf.reduce_mean(self.gan_loss.score(s_real)),
                "d_fake": tf.reduce_mean(self.gan_loss.score(s_fake))}
        if gp is not None:
            logs["gp"] = gp
        return logs

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
        n = self._replicas()
        g_vars = self.generator.trainable_variables
        adversarial = self.adversarial and not self.pretraining
        d_grads, apply_d = None, False
        if adversarial:
            batch = self._with_critic_offset(batch)
        with tf.GradientTape() as g_tape:
            out = self.forward(batch)
            fake = out["restored"]
            if adversarial:
                fake_scores, d_logs, d_grads, apply_d = self.discriminator_step(
                    batch, target, fake, g_tape)
            g_loss, logged = self.generator_loss(batch, out)
            if adversarial:
                adv = gan_losses.total([self.gan_loss.generator(s)
                                        for s in gan_losses.heads(fake_scores)])
                g_loss += self.adv_weight * adv
                logged.update(d_logs, adv=adv)
            g_replica = self._scaled(g_loss / n, self.g_optimizer)
        g_grads = self._gradients(g_tape, g_replica, g_vars, self.g_optimizer)
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars))
        if apply_d:
            self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))
        logged["g_loss"] = g_loss
        return self._finish_step(logged, diagnose, target, fake, g_grads, d_grads)

    def _finish_step(self, logged, diagnose, target, fake, g_grads, d_grads):
        """The shared end of every train step: diagnostics (on the diagnostic variant
        only; SSIM, a blur per image, is left to validation), the EMA update, one write
        of the step means, and the logs."""
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
        if self.ema_generator is not None:
            self._update_ema()
        self._means.update(logged)
        return self._means.results(n for n in self._logged_names() if n not in _TRAIN_SKIP)

    def test_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        target = batch[self.target_key]
        out = self.forward(batch, training=False)
        fake = out["restored"]
        pixel = self.pixel_loss_fn(target, fake)
        logged = dict(self._quality(target, fake), pixel=pixel, g_loss=self.pixel_weight * pixel)
        logged.update(self.stage_metrics(batch, out))
        names = ["g_loss", "pixel", *self.GEN_METRICS, "psnr", "ssim", "l1", *self.STEP_METRICS]
        if "mask" in batch and not self.sr_scale:
            # Realism of the fill beside its fidelity (1.0 = as sharp as the real face);
            # faces whose eroded hole is empty are left out.
            sharp = metrics.hole_sharpness(target, fake, batch["mask"])
            logged["hole_sharpness"] = tf.boolean_mask(sharp, tf.math.is_finite(sharp))
            names.append("hole_sharpness")
        if self.sr_scale:
            b = self.sr_scale
            up = metrics.bicubic_upsample(batch[self.input_keys[0]], target.shape[1])
            logged.update(psnr_y=metrics.psnr_y(target, fake, b),
                          ssim_y=metrics.ssim_y(target, fake, b),
                          bicubic_psnr=metrics.psnr(target, up),
                          bicubic_psnr_y=metrics.psnr_y(target, up, b),
                          bicubic_ssim_y=metrics.ssim_y(target, up, b))
            for key, image in (("sharpness", fake), ("bicubic_sharpness", up)):
                sharp = metrics.sharpness(target, image, b)  # realism beside fidelity
                logged[key] = tf.boolean_mask(sharp, tf.math.is_finite(sharp))
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
