"""The unmasking regime: segmentation + coarse-to-fine inpainting (``--arch unmask``).

One step trains the whole two-stage generator (:mod:`tfface.models.unmask`) end to end
on ``mask_weight · Dice(mask_prob, mask) + coarse_weight · L1(coarse) + pixel_weight ·
L1(refined)`` (+ ``content_weight`` · perceptual(restored) through the VGG content
path), and, when adversarial, the SN-PatchGAN hinge loss on ``restored`` (the regime's
default; ``train.gan_loss`` may choose another of :mod:`tfface.train.gan_losses`):
``L_D = E[relu(1 - D(real))] + E[relu(1 + D(fake))]``, generator term ``-E[D(fake)]``
weighted by ``adv_weight``. The ground-truth mask teaches the segmentation; the
inpainting stages always see the *predicted* mask, as they will in deployment.

Validation adds the segmentation scores: ``mask_acc`` (pixel accuracy of the 0/1
predicted mask), ``mask_iou`` (intersection over union per image, 1 for an image
where both masks are empty) and ``dice``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from tfface import losses
from tfface.metrics import mask_scores
from tfface.models.unmask import STAGES, stage_model
from tfface.train.trainer import RegimeOptions, RestorationTrainer


@dataclass(frozen=True)
class UnmaskOptions(RegimeOptions):
    """Options of the ``unmask`` regime (config: ``train.coarse_weight``,
    ``train.mask_weight``)."""

    coarse_weight: float = 1.0
    """Weight of the coarse stage's pixel loss."""
    mask_weight: float = 1.0
    """Weight of the segmentation's Dice loss."""


class UnmaskTrainer(RestorationTrainer):
    """Trainer of the ``unmask`` family (see the module docstring).

    Differs from :class:`~tfface.train.trainer.RestorationTrainer` in the generator's
    outputs (the four stages, :meth:`forward`), its supervised loss (Dice + coarse +
    refined, :meth:`generator_loss`), its scores (:meth:`stage_metrics`) and its
    default adversarial loss (``hinge``).

    Args:
        options: :class:`UnmaskOptions`.
        mask_key: element key of the ground-truth occluder mask.
        Other arguments as :class:`~tfface.train.trainer.RestorationTrainer`.
    """

    Options = UnmaskOptions
    GAN_LOSS = "hinge"
    GEN_METRICS = ("coarse", "dice")
    STEP_METRICS = ("mask_acc", "mask_iou")

    def __init__(self, generator, discriminator=None, *, mask_key: str = "mask", **kwargs: Any):
        super().__init__(generator, discriminator, **kwargs)
        self.mask_key = mask_key
        self.stages = stage_model(generator)
        self.eval_stages = (stage_model(self.ema_generator) if self.ema_generator is not None
                            else self.stages)

    @property
    def coarse_weight(self) -> float:
        return float(self.options.coarse_weight)

    @property
    def mask_weight(self) -> float:
        return float(self.options.mask_weight)

    def forward(self, batch, training=True):
        stages = self.stages if training else self.eval_stages
        outs = stages(self._gen_inputs(batch), training=training)
        return {name: tf.cast(t, tf.float32) for name, t in zip(STAGES, outs)}

    def stage_metrics(self, batch, out):
        mask = batch[self.mask_key]
        acc, iou = mask_scores(mask, out["mask_prob"])
        return {"coarse": self.pixel_loss_fn(batch[self.target_key], out["coarse"]),
                "dice": losses.dice_loss(mask, out["mask_prob"]), "mask_acc": acc,
                "mask_iou": iou}

    def generator_loss(self, batch, out):
        """``mask_weight`` · Dice + ``coarse_weight`` · pixel(coarse) + ``pixel_weight`` ·
        pixel(refined), + ``content_weight`` · content(restored) after pre-training."""
        target = batch[self.target_key]
        logged = self.stage_metrics(batch, out)
        logged["pixel"] = pixel = self.pixel_loss_fn(target, out["refined"])
        loss = (self.pixel_weight * pixel + self.coarse_weight * logged["coarse"]
                + self.mask_weight * logged["dice"])
        if self.pretraining:
            return loss, logged
        return self._add_content(loss, logged, target, out["restored"])
