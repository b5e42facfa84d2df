"""The family spec: what the rest of the code may ask of an architecture family.

A family module (``tfface/models/NAME.py``) declares one :class:`Family` as ``FAMILY``
next to its builders and presets, and :mod:`tfface.models` registers it in ``ARCHS``.
Config resolution and validation (:mod:`tfface.config`), the trainer factory
(:func:`tfface.train.runner.build_trainer`), the params checks
(:mod:`tfface.models.params`) and the exporters read these fields, never module
attributes with defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from tfface.models.params import family_specs

TASKS = ("inpaint", "sr")

INPUT = "input"
"""``disc_condition`` value: the discriminator judges (image, first generator input) pairs."""

MOBILE_INPUT: dict[str, Any] = {"mask_input": True, "prefill": True, "prefill_method": "pyramid",
                                "prefill_iterations": 8, "prefill_levels": 4}
"""Generator input options of the ``mobile`` inpainting presets: the mask as a second input
and a residual over the classical coarse-to-fine ``HoleFill`` (the shipped V-Net's recipe)."""

MOBILE_DATA: dict[str, Any] = {
    "image_size": 128, "task": "inpaint", "eval_count": 100, "face_framing": "template",
    "occlusions": {"celeba_c": 0.6, "boxes": 0.4},
    "eval_occlusions": {"celeba_c": 1.0, "boxes": 1.0},
}
"""Data of the pix2pix and wgan_gl ``mobile`` presets: 128 px aligned faces with the CelebA-C
pattern and boxes, the occlusions their acceptance targets name."""


def merged_params(defaults: Mapping[str, Any], cfg) -> dict[str, Any]:
    """A family's builder arguments: its defaults updated with ``cfg.model.params``."""
    return dict(defaults, **cfg.model.params)


def _no_layers(cfg) -> list[str]:
    return []


def _any_scale(scale: int) -> bool:
    return True


@dataclass(frozen=True, eq=False)
class Family:
    """One architecture family: its task, presets, builders and training regime."""

    name: str
    """Registry name (``--arch NAME``, ``model.arch``)."""
    task: str
    """``inpaint`` (occluded face in, restored face out) or ``sr`` (low-resolution face in,
    face enlarged by ``data.scale`` out)."""
    presets: Mapping[str, dict[str, Any]]
    """Preset name → nested config overrides (applied by :func:`tfface.config.resolve`)."""
    default_preset: str
    default_params: Mapping[str, Any]
    """Every ``model.params`` key the builders read, with its default."""
    build_generator: Callable[[Any], Any]
    """``cfg → keras.Model``: the deployed network (inputs in [-1, 1], output ``restored``)."""
    build_discriminator: Callable[[Any], Any] | None = None
    """``cfg → keras.Model`` judging images; ``None``: the family trains supervised only."""
    disc_condition: str | None | Callable[[Any], str | None] = None
    """What the discriminator reads next to the judged image: ``None`` (nothing),
    :data:`INPUT` (the generator's first input: a conditional GAN) or an element key
    (e.g. ``"mask"``); or ``cfg → one of those`` for a family whose discriminator is a
    choice of its config (the V-Net's ``disc``)."""
    regime: str = "gan"
    """Trainer of the family (a key of :data:`tfface.train.regimes.REGIMES`)."""
    gan_loss: str | None = None
    """Default adversarial loss (a key of :data:`tfface.train.gan_losses.GAN_LOSSES`);
    ``None``: the regime's. ``train.gan_loss`` overrides it."""
    tiny_preset: str = "tiny"
    """Preset that trains in seconds (tests, smoke runs)."""
    downsampling_factor: Callable[[Any], int] | None = None
    """``cfg → k``: ``data.image_size`` must be a multiple of ``k``; ``None``: any size."""
    supports_scale: Callable[[int], bool] | None = None
    """Which ``data.scale`` values the generator can enlarge by; ``None`` for a family
    that does not read ``data.scale`` (an SR family's default: every scale the data
    pipeline makes)."""
    int8_keep_float: Callable[[Any], list[str]] = _no_layers
    """``cfg → layer names`` a full-int8 export keeps in float (default: none)."""

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"family {self.name}: task must be one of {TASKS}, got {self.task!r}")
        if self.task == "sr" and self.supports_scale is None:
            object.__setattr__(self, "supports_scale", _any_scale)
        for preset in (self.default_preset, self.tiny_preset):
            if preset not in self.presets:
                raise ValueError(f"family {self.name} has no preset '{preset}'")

    def params(self, cfg) -> dict[str, Any]:
        """Builder arguments of ``cfg`` (defaults updated with ``cfg.model.params``)."""
        return merged_params(self.default_params, cfg)

    @property
    def adversarial(self) -> bool:
        """Whether the family has a discriminator (``train.adv_weight > 0`` uses it)."""
        return self.build_discriminator is not None

    @property
    def params_spec(self):
        """``{key: Spec}`` of every ``model.params`` key (see :mod:`tfface.models.params`)."""
        return family_specs(self.name)

    def disc_keys(self, input_keys: tuple[str, ...], cfg=None) -> tuple[str, ...]:
        """Element keys the discriminator reads next to the image, given the generator's
        input keys and the run's config (see :attr:`disc_condition`)."""
        cond = self.disc_condition
        if callable(cond):
            if cfg is None:
                raise ValueError(f"family {self.name}: its discriminator's inputs depend on "
                                 "the config; pass cfg")
            cond = cond(cfg)
        if cond is None:
            return ()
        return (input_keys[0] if cond == INPUT else cond,)

    def upscale(self, cfg) -> int:
        """How much the generator enlarges its input: ``data.scale`` for SR, else 1."""
        return int(cfg.data.scale) if self.task == "sr" else 1
