"""Training regimes: which trainer class a family trains under.

One trainer per regime, never one per architecture: a family module names its regime
with ``REGIME`` (default ``"gan"``: :class:`~tfface.train.trainer.RestorationTrainer`,
supervised or BCE-GAN). A regime class may take extra constructor arguments from the
config through a ``options(cfg)`` class method.
"""

from __future__ import annotations

from typing import Any

from tfface.train.trainer import RestorationTrainer
from tfface.train.unmask import UnmaskTrainer
from tfface.train.wgan import WGANTrainer

REGIMES: dict[str, type[RestorationTrainer]] = {
    "gan": RestorationTrainer,
    "wgan_gp": WGANTrainer,
    "unmask": UnmaskTrainer,
}


def trainer_for(family, cfg) -> tuple[type[RestorationTrainer], dict[str, Any]]:
    """The trainer class of ``family`` and its config-derived extra arguments."""
    name = getattr(family, "REGIME", "gan")
    try:
        cls = REGIMES[name]
    except KeyError:
        raise ValueError(f"unknown training regime '{name}'; known: {', '.join(REGIMES)}") from None
    options = getattr(cls, "options", None)
    return cls, (options(cfg) if options is not None else {})
