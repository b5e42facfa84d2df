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


def test_every_cli_is_a_console_script_whose_help_says_what_it_writes(capsys):
    """pyproject's console scripts: one per CLI, each resolving to a ``main`` whose
    ``--help`` exits 0 and says what the command writes and where."""
    import importlib
    import tomllib

    import pytest

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    want = {"tfface-train", "tfface-convert", "tfface-validate", "tfface-evaluate",
            "tfface-restore", "tfface-preview"}
    if os.path.exists(os.path.join(root, "pipelines", "prepare.py")):
        want.add("tfface-prepare")
    assert want <= set(scripts), sorted(want - set(scripts))
    for name, target in scripts.items():
        module, func = target.split(":")
        main = getattr(importlib.import_module(module), func)
        assert func == "main" and callable(main), name
        with pytest.raises(SystemExit) as exit_:
            main(["--help"])
        assert exit_.value.code == 0, name
        text = " ".join(capsys.readouterr().out.split())
        assert "Writes " in text, f"{name} --help does not say what it writes"
