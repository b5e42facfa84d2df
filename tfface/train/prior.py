"""The face prior of a ``prefill_prior`` inpainting generator, set from its training data.

:class:`tfface.models.layers.PriorHoleFill` blends a prior face into the hole; the prior
is the mean of the run's own training faces (aligned, so a soft but structured face),
computed once when a run starts and then saved with the weights like any other.
"""

from __future__ import annotations

import numpy as np

from tfface import keras
from tfface.config import Config


def init_face_prior(gen: keras.Model, cfg: Config, source=None, faces: int = 512) -> bool:
    """Set a ``prefill_prior`` generator's face prior to the mean of ``faces`` training
    faces (once: a prior that is not all zero, e.g. loaded from a run, is kept). Returns
    whether it was set."""
    from tfface.data.pipeline import make_dataset
    from tfface.models.layers import PRIOR_LAYER, PriorHoleFill

    try:
        layer = gen.get_layer(PRIOR_LAYER)
    except ValueError:
        return False
    if not isinstance(layer, PriorHoleFill) or np.any(layer.prior.numpy() != 0):
        return False
    total, n = 0.0, 0
    for batch in make_dataset(cfg, "train", source=source):
        clean = batch["clean"].numpy().astype(np.float64)
        total = total + clean.sum(0)
        n += len(clean)
        if n >= faces:
            break
    layer.prior.assign((total / max(n, 1)).astype(np.float32))
    print(f"Face prior: the mean of {n} training faces.")
    return True
