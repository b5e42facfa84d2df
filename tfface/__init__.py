"""tfface: train face restoration models with Keras and ship them as TFLite files.

The project runs on the Keras 2 API (``tf_keras``) throughout, because
tensorflow-model-optimization (QAT, pruning) and keras-unet-collection only work
with it. This module flips TensorFlow's ``TF_USE_LEGACY_KERAS`` switch *before*
TensorFlow is imported and exposes the one Keras every module uses::

    from tfface import keras
"""

from __future__ import annotations

import os
import sys

__version__ = "0.1.0"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    # TensorFlow reads the switch once, at import; it is too late to change it.
    raise ImportError(
        "tfface needs the Keras 2 API (tf_keras), but TensorFlow was already imported "
        "with Keras 3. Import tfface before tensorflow, or set TF_USE_LEGACY_KERAS=1 "
        "in the environment before starting Python."
    )
os.environ["TF_USE_LEGACY_KERAS"] = "1"

import tf_keras as keras  # noqa: E402  (must follow the switch above)

__all__ = ["keras", "__version__"]
