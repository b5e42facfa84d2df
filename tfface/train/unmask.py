"""The unmasking regime: segmentation + coarse-to-fine inpainting (``--arch unmask``).

One step trains the whole two-stage generator (:mod:`tfface.models.unmask`) end to end
on ``mask_weight · Dice(mask_prob, mask) + coarse_weight · L1(coarse) + pixel_weight ·
L1(refined)`` (+ ``content_weight`` · perceptual(restored) through the VGG content
path), and, when adversarial, the SN-PatchGAN hinge loss on ``restored``:
``L_D = E[relu(1 - D(real))] + E[relu(1 + D(fake))]``, generator term ``-E[D(fake)]``
weighted by ``adv_weight``. The ground-truth mask teaches the segmentation; the
inpainting stages always see the *predicted* mask, as they will in deployment.

Validation adds the segmentation scores: ``mask_acc`` (pixel accuracy of the 0/1
predicted mask), ``mask_iou`` (intersection over union per image, 1 for an image
where both masks are empty) and ``dice``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfface import losses
from tfface.train.trainer import RestorationTrainer

_EXTRA = ("dice", "coarse", "mask_acc", "mask_iou")


def mask_scores(target: tf.Tensor, prob: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-image pixel accuracy and IoU of ``prob > 0.5`` against ``target > 0.5``."""
    pred = tf.cast(prob > 0.5, tf.float32)
    true = tf.cast(target > 0.5, tf.float32)
    axes = [1, 2, 3]
    acc = tf.reduce_mean(tf.cast(tf.equal(pred, true), tf.float32), axis=axes)
    inter = tf.reduce_sum(pred * true, axis=axes)
    union = tf.reduce_sum(tf.maximum(pred, true), axis=axes)
    iou = tf.where(union > 0, inter / tf.maximum(union, 1.0), tf.ones_like(union))
    return acc, iou


class UnmaskTrainer(RestorationTrainer):
    """Trainer of the ``unmask`` family (see the module docstring).

    Args:
        coarse_weight: weight of the coarse stage's pixel loss.
        mask_weight: weight of the segmentation's Dice loss.
        mask_key: element key of the ground-truth occluder mask.
        Other arguments as :class:`~tfface.train.trainer.RestorationTrainer`.
    """

    def __init__(self, generator, discriminator=None, *, coarse_weight: float = 1.0,
                 mask_weight: float = 1.0, mask_key: str = "mask", **kwargs: Any):
        from tfface.models.unmask import stage_model

        super().__init__(generator, discriminator, **kwargs)
        self.coarse_weight = float(coarse_weight)
        self.mask_weight = float(mask_weight)
        self.mask_key = mask_key
        self.stages = stage_model(generator)
        self.eval_stages = (stage_model(self.ema_generator) if self.ema_generator is not None
                            else self.stages)

    @classmethod
    def options(cls, cfg) -> dict[str, Any]:
        """Constructor arguments taken from a run's config."""
        return {"coarse_weight": cfg.train.coarse_weight, "mask_weight": cfg.train.mask_weight}

    EXTRA_METRICS = _EXTRA

    def _logged_names(self) -> list[str]:
        names = ["g_loss", "pixel", "coarse", "dice"]
        if self.content_weight > 0:
            names.append("content")
        if self.adversarial:
            names += ["adv", "d_loss", "d_real", "d_fake", "d_grad_norm"]
        names += ["g_grad_norm", "psnr", "ssim", "l1", "mask_acc", "mask_iou"]
        return names

    def _train_step(self, batch):
        return self._unmask_step(batch)

    def _unmask_step(self, batch):
        target = batch[self.target_key]
        mask = batch[self.mask_key]
        diagnose = bool(self._diagnose)  # see RestorationTrainer.make_train_function
        logged: dict[str, tf.Tensor] = {}
        n = self._replicas()
        g_vars = self.generator.trainable_variables
        adversarial = self.adversarial and not self.pretraining
        content = None
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            prob, coarse, refined, restored = (
                tf.cast(t, tf.float32) for t in self.stages(self._gen_inputs(batch),
                                                           training=True))
            dice = losses.dice_loss(mask, prob)
            pixel = self.pixel_loss_fn(target, refined)
            coarse_loss = self.pixel_loss_fn(target, coarse)
            g_loss = (self.pixel_weight * pixel + self.coarse_weight * coarse_loss
                      + self.mask_weight * dice)
            if not self.pretraining and self.content_weight > 0:
                content = self.content_fn(target, restored)
                g_loss += self.content_weight * content
            if adversarial:
                real_logits = self._disc(target, batch, training=True)
                fake_logits = self._disc(restored, batch, training=True)
                d_loss = losses.hinge_discriminator_loss(real_logits, fake_logits)
                adv = losses.hinge_generator_loss(fake_logits)
                g_loss += self.adv_weight * adv
                d_replica = self._scaled(d_loss / n, self.d_optimizer)
            g_replica = self._scaled(g_loss / n, self.g_optimizer)
        g_grads = self._gradients(g_tape, g_replica, g_vars, self.g_optimizer)
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars))
        if adversarial:
            d_vars = self.discriminator.trainable_variables
            d_grads = self._gradients(d_tape, d_replica, d_vars, self.d_optimizer)
            self.d_optimizer.apply_gradients(zip(d_grads, d_vars))
            logged.update(adv=adv, d_loss=d_loss,
                          d_real=tf.reduce_mean(tf.cast(real_logits, tf.float32)),
                          d_fake=tf.reduce_mean(tf.cast(fake_logits, tf.float32)))
        acc, iou = mask_scores(mask, prob)
        logged.update(g_loss=g_loss, pixel=pixel, coarse=coarse_loss, dice=dice,
                      mask_acc=acc, mask_iou=iou)
        return self._finish_step(logged, diagnose, target, restored, g_grads,
                                 d_grads if adversarial else None, content)

    def test_step(self, batch):
        target = batch[self.target_key]
        mask = batch[self.mask_key]
        prob, coarse, _, restored = (
            tf.cast(t, tf.float32) for t in self.eval_stages(self._gen_inputs(batch),
                                                            training=False))
        pixel = self.pixel_loss_fn(target, restored)
        acc, iou = mask_scores(mask, prob)
        self._means.update(dict(
            self._quality(target, restored), pixel=pixel, g_loss=self.pixel_weight * pixel,
            coarse=self.pixel_loss_fn(target, coarse), dice=losses.dice_loss(mask, prob),
            mask_acc=acc, mask_iou=iou))
        names = ("g_loss", "pixel", "coarse", "dice", "psnr", "ssim", "l1", "mask_acc",
                 "mask_iou")
        return self._means.results(names)
