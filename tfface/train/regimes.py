"""Training regimes: which trainer class a family trains under.

One trainer per regime, never one per architecture: a family's spec names its regime
(:attr:`tfface.models.family.Family.regime`, default ``"gan"``:
:class:`~tfface.train.trainer.RestorationTrainer`, supervised or adversarial). A
regime's own knobs are its ``Options`` dataclass, read from the config's flat
``train.*`` keys of the same names.
"""

from __future__ import annotations

from tfface.registry import Registry
from tfface.train.trainer import RegimeOptions, RestorationTrainer
from tfface.train.unmask import UnmaskTrainer
from tfface.train.wgan import WGANTrainer

REGIMES: Registry[type[RestorationTrainer]] = Registry("training regime", {
    "gan": RestorationTrainer,
    "wgan_gp": WGANTrainer,
    "unmask": UnmaskTrainer,
}, listing="known")


def trainer_for(family, cfg) -> tuple[type[RestorationTrainer], RegimeOptions]:
    """The trainer class of ``family`` and its options read from ``cfg``."""
    cls = REGIMES.lookup(family.regime)
    return cls, cls.Options.from_config(cfg)
