"""Training regimes: which trainer class a family trains under.

One trainer per regime, never one per architecture: a family's spec names its regime
(:attr:`tfface.models.family.Family.regime`, default ``"gan"``:
:class:`~tfface.train.trainer.RestorationTrainer`, supervised or adversarial). A
regime's own knobs are its ``Options`` dataclass, read from the config's flat
``train.*`` keys of the same names.
"""

from __future__ import annotations

from tfface.train.trainer import RegimeOptions, RestorationTrainer
from tfface.train.unmask import UnmaskTrainer
from tfface.train.wgan import WGANTrainer

REGIMES: dict[str, type[RestorationTrainer]] = {
    "gan": RestorationTrainer,
    "wgan_gp": WGANTrainer,
    "unmask": UnmaskTrainer,
}


def trainer_for(family, cfg) -> tuple[type[RestorationTrainer], RegimeOptions]:
    """The trainer class of ``family`` and its options read from ``cfg``."""
    try:
        cls = REGIMES[family.regime]
    except KeyError:
        raise ValueError(f"unknown training regime '{family.regime}'; known: "
                         f"{', '.join(REGIMES)}") from None
    return cls, cls.Options.from_config(cfg)
