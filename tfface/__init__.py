"""tfface: train face restoration models with Keras and ship them as TFLite files.

The project runs on the Keras 2 API (``tf_keras``) throughout, because
tensorflow-model-optimization (QAT, pruning) and keras-unet-collection only work
with it. This module flips TensorFlow's ``TF_USE_LEGACY_KERAS`` switch *before*
TensorFlow is imported and exposes the one Keras every module uses::

    from tfface import keras
"""

from __future__ import annotations

import contextlib
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


def _nvidia_device_present() -> bool:
    """Whether the machine shows an NVIDIA GPU to this process (Linux device nodes or
    the driver's proc file; elsewhere assume one may be there)."""
    if not sys.platform.startswith("linux"):
        return True
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (C++ libraries' stderr) for the block, unless
    ``TFFACE_TF_LOGS`` is set; Python's ``sys.stderr`` is flushed first and fd 2 is
    restored before any exception propagates. For TensorFlow / LiteRT start-up notices
    that are printed from C++ and ignore ``TF_CPP_MIN_LOG_LEVEL``."""
    if os.environ.get("TFFACE_TF_LOGS"):
        yield
        return
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _import_keras_quietly():
    """Import tf_keras (and TensorFlow) and enumerate the devices with TensorFlow's C++
    start-up notices muted.

    TensorFlow prints oneDNN/CUDA notices on stderr before its log level applies, and
    its CUDA plugin logs ``E0000 ... failed call to cuInit`` the first time devices are
    listed on a machine without a GPU (its level is ERROR, so ``TF_CPP_MIN_LOG_LEVEL=2``
    keeps it). On a CPU machine these read like errors. So the import *and* the first
    device enumeration (``tf.config.list_physical_devices()``, which only finds the
    devices: a GPU that is there is still found and used, and nothing is configured
    that a program could still want to set) run inside :func:`quiet_stderr`. Should an
    NVIDIA device be present yet TensorFlow find no GPU, one warning says so. Set
    ``TFFACE_TF_LOGS=1`` to see TensorFlow's own lines.
    """
    gpus = None
    with quiet_stderr():
        import tf_keras
        import tensorflow as tf

        try:
            gpus = tf.config.list_physical_devices("GPU")
        except Exception:  # pragma: no cover - TensorFlow will say why when it runs
            gpus = None
    if gpus == [] and _nvidia_device_present() and tf.test.is_built_with_cuda():
        import warnings

        warnings.warn("an NVIDIA device is present but TensorFlow found no usable GPU, so "
                      "tfface runs on the CPU; set TFFACE_TF_LOGS=1 to see TensorFlow's "
                      "reason", RuntimeWarning, stacklevel=3)
    return tf_keras


keras = _import_keras_quietly()

__all__ = ["keras", "quiet_stderr", "__version__"]
