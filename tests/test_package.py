"""Package-level guarantees: one Keras (tf_keras), a clear error otherwise, quiet import."""

from __future__ import annotations

import os
import subprocess
import sys


def _python(code: str, **env):
    full_env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    full_env.update(env, PYTHONPATH=os.getcwd())
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=300)


def test_tfface_selects_tf_keras_for_tensorflow_keras():
    proc = _python("import tfface, tensorflow as tf; print(tf.keras.__name__, "
                   "tfface.keras.__version__.split('.')[0])")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["tf_keras.api._v2.keras", "2"]


def test_importing_tensorflow_first_with_keras3_is_a_clear_error():
    proc = _python("import tensorflow; import tfface")
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "TF_USE_LEGACY_KERAS=1" in proc.stderr


def test_import_does_not_spill_tensorflow_startup_notices():
    proc = _python("import tfface")
    assert proc.returncode == 0
    assert "oneDNN" not in proc.stderr and "cuda" not in proc.stderr.lower()
