"""Model families and their registry.

Each family module (``vnet``, ``pix2pix``, ...) declares its builders, presets and a
:class:`~tfface.models.family.Family` spec as ``FAMILY``: task, presets, default and
``tiny`` preset, generator and discriminator builders, what the discriminator reads
(``disc_condition``), the training regime (see :mod:`tfface.train.regimes`), the
default adversarial loss, and its size and int8 constraints. :data:`ARCHS` is the one
place a family is registered.
"""

from __future__ import annotations

from tfface.models import pix2pix, srgan, unmask, vnet, wgan_gl
from tfface.models.family import Family
from tfface.registry import Registry

ARCHS: Registry[Family] = Registry("architecture", {
    f.name: f for f in (vnet.FAMILY, pix2pix.FAMILY, srgan.FAMILY, wgan_gl.FAMILY, unmask.FAMILY)
}, sort=True)


def get_arch(name: str) -> Family:
    """Return the family registered as ``name``; the error lists valid names."""
    return ARCHS.lookup(name)
