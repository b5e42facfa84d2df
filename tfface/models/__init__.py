"""Model families and their registry.

A family module exposes ``PRESETS`` (preset name → nested config overrides),
``DEFAULT_PRESET``, ``TASK``, ``build_generator(cfg)`` and, for adversarial training,
``build_discriminator(cfg)``; ``CONDITIONAL_D = True`` makes the trainer judge
(image, generator input) pairs, ``DISC_CONDITION = KEY`` (image, ``batch[KEY]``) pairs;
``REGIME`` names the trainer (see :mod:`tfface.train.regimes`). Every family has a ``tiny`` preset for tests and
smoke runs.
"""

from __future__ import annotations

from types import ModuleType

from tfface.models import pix2pix, srgan, unmask, vnet, wgan_gl

ARCHS: dict[str, ModuleType] = {
    "vnet": vnet,
    "pix2pix": pix2pix,
    "srgan": srgan,
    "wgan_gl": wgan_gl,
    "unmask": unmask,
}


def get_arch(name: str) -> ModuleType:
    """Return the family module registered as ``name``; the error lists valid names."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(
            f"unknown architecture '{name}'; valid names: {', '.join(sorted(ARCHS))}"
        ) from None
