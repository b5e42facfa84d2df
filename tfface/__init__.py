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


def _import_keras_quietly():
    """Import tf_keras (and TensorFlow) with TensorFlow's C++ start-up notices muted.

    TensorFlow prints oneDNN/CUDA notices on stderr before its log level applies;
    on a CPU machine they read like errors. stderr (fd 2) is silenced only for the
    import and restored before any Python exception propagates. Set
    ``TFFACE_TF_LOGS=1`` to see them.
    """
    if os.environ.get("TFFACE_TF_LOGS") or "tensorflow" in sys.modules:
        import tf_keras

        return tf_keras
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tf_keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tf_keras


keras = _import_keras_quietly()

__all__ = ["keras", "__version__"]
