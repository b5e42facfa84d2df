"""Shared fixtures: tiny configurations and one tiny trained run reused across tests."""

from __future__ import annotations

import os

import pytest

import tfface  # noqa: F401  (tf_keras switch before TensorFlow)
import tensorflow as tf

from tfface import keras

tf.config.threading.set_inter_op_parallelism_threads(2)


def tiny_config(**train_overrides):
    from tfface.config import resolve

    cfg = resolve("vnet", "tiny", {"train": train_overrides} if train_overrides else None)
    return cfg


@pytest.fixture
def tiny_cfg():
    return tiny_config()


@pytest.fixture(scope="session")
def trained_tiny_run(tmp_path_factory):
    """A tiny V-Net trained supervised for a few hundred steps (shared, built once)."""
    from tfface.train import run

    run_dir = str(tmp_path_factory.mktemp("runs") / "vnet-tiny")
    cfg = tiny_config(epochs=3, steps_per_epoch=60, adv_weight=0.0, g_lr=2e-3,
                      save_every_steps=1000)
    result = run(cfg, run_dir, progress=False)
    assert result.status == "completed"
    return run_dir


@pytest.fixture(scope="session")
def tiny_int8_file(trained_tiny_run, tmp_path_factory):
    """The tiny run converted to a full-integer .tflite (with its card) in its run
    directory, as by default, built once."""
    from tflite import convert

    assert convert.main(["--int8", "--run", trained_tiny_run, "--samples", "100"]) == 0
    return os.path.join(trained_tiny_run, "model_int8.tflite")


@pytest.fixture(scope="session")
def trained_tiny_sr_run(tmp_path_factory):
    """A tiny SRGAN generator (x4, 8 -> 32 px) trained on the pixel loss only for 80
    steps (the pre-training phase; about 15 s), shared and built once."""
    from tfface.config import resolve
    from tfface.train import run

    run_dir = str(tmp_path_factory.mktemp("runs") / "srgan-tiny")
    cfg = resolve("srgan", "tiny", {"train": {"epochs": 2, "steps_per_epoch": 40,
                                              "pretrain_steps": 80, "g_lr": 2e-3,
                                              "save_every_steps": 1000}})
    result = run(cfg, run_dir, progress=False)
    assert result.status == "completed"
    return run_dir


@pytest.fixture(scope="session")
def tiny_sr_float_file(trained_tiny_sr_run, tmp_path_factory):
    """The tiny SR run converted to a float .tflite (with its card) in its run directory,
    built once."""
    from tflite import convert

    assert convert.main(["--float", "--run", trained_tiny_sr_run]) == 0
    return os.path.join(trained_tiny_sr_run, "model_float.tflite")


class Interrupt(keras.callbacks.Callback):
    """Raise KeyboardInterrupt after a given training step, like a Ctrl-C or a killed job."""

    def __init__(self, at_step: int):
        super().__init__()
        self.at_step = at_step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.g_optimizer.iterations.numpy()) == self.at_step:
            raise KeyboardInterrupt
