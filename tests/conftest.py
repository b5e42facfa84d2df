"""Shared fixtures: tiny configurations and one tiny trained run reused across tests."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

import tfface  # noqa: F401  (tf_keras switch before TensorFlow)
import tensorflow as tf

from tfface import keras

tf.config.threading.set_inter_op_parallelism_threads(2)


ONE_OCCLUSION = {"boxes": 1.0}


def tiny_config(mixture: bool = False, **train_overrides):
    """The tiny V-Net preset with ``train`` overrides. It synthesizes one occlusion (boxes)
    unless ``mixture``: tracing the graphs of the full default mixture costs about 13 s per
    dataset built (0.3 s for one generator), most of a tiny run, and the tests that use
    this are about training, conversion and scoring, not synthesis (tests/test_occlusion.py
    and tests/test_pipeline.py cover the mixture)."""
    from tfface.config import resolve

    overrides = {"train": train_overrides} if train_overrides else {}
    if not mixture:
        overrides["data"] = {"occlusions": ONE_OCCLUSION, "eval_occlusions": ONE_OCCLUSION}
    return resolve("vnet", "tiny", overrides or None)


def built_once(tmp_path_factory, name: str, build) -> str:
    """``build(dir)`` run once for the whole test session, its directory returned.

    Under pytest-xdist (``-n 2``) each worker is a separate process with its own session
    fixtures: the first worker to ask builds in a folder both workers share, under a file
    lock, and the other waits and reuses it. A build that failed half-way is started over
    in an empty folder, never resumed from what it left."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        target = tmp_path_factory.mktemp(name)
        build(str(target))
        return str(target)
    root = tmp_path_factory.getbasetemp().parent / "shared"
    root.mkdir(exist_ok=True)
    target, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            build(str(target))
            done.write_text("built\n")
    return str(target)


LONGEST_FILES_FIRST = (
    "test_multiworker.py", "test_family_runs.py", "test_quant_modes.py", "test_cli.py",
    "test_gan_families.py", "test_train.py", "test_android_assets.py", "test_reliability.py",
    "test_segmenter_training.py",
)
"""Test files that take longest (about 50-320 s each alone, from ``--durations``), run
first: ``-n 2 --dist loadfile`` hands each file to one worker in collection order, and a
long file handed out last keeps one worker busy while the other waits."""


LAYERS = {
    "unit": ("test_architecture.py", "test_degrade.py", "test_faces.py", "test_occlusion.py",
             "test_package.py", "test_photo_sr.py", "test_pipeline.py", "test_preview.py",
             "test_real_occluders.py", "test_registry.py", "test_skin_occluder.py",
             "test_sources.py", "test_training_curve.py"),
    "models": ("test_android_assets.py", "test_blind_file.py", "test_convert.py",
               "test_dlib_resnet.py", "test_gan_families.py", "test_gan_losses.py",
               "test_identity.py", "test_identity_student.py", "test_models.py",
               "test_new_archs.py", "test_quant_modes.py", "test_realism.py", "test_soup.py",
               "test_grow.py",
               "test_validate.py", "test_vnet_upsample.py"),
    "guarantees": ("test_integrity.py", "test_reliability.py", "test_security.py"),
    "e2e": ("test_cli.py", "test_data_service.py", "test_evaluate.py", "test_family_runs.py",
            "test_multiworker.py", "test_restore.py", "test_segmenter_training.py",
            "test_train.py", "test_video.py", "test_web_demo.py", "test_wheel.py"),
}
"""The layer of each test file, a marker of the same name (registered in setup.cfg):
``unit`` (one module's logic, no training), ``models`` (building, training steps and
conversion of tiny models), ``guarantees`` (what docs/reliability.md and docs/security.md
promise) and ``e2e`` (a command or a whole run end to end). A test that uses a trained
session run below (:data:`TRAINED_RUNS`) or is listed in :data:`END_TO_END` is ``e2e``
as well, so ``pytest -m "not e2e"`` is the fast loop (docs/testing.md). A file missing
here is ``e2e`` until it is listed (``tests/test_architecture.py`` asks for it)."""

TRAINED_RUNS = ("trained_tiny_run", "tiny_int8_file", "trained_tiny_sr_run",
                "tiny_sr_float_file")

END_TO_END = (
    # Whole runs, several processes or a run killed and resumed (each 50-240 s under load).
    "test_reliability.py::test_sigkill_at_any_moment_then_the_same_command_resumes_exactly",
    "test_reliability.py::test_same_seed_gives_identical_losses_and_op_determinism_is_scoped",
    "test_integrity.py::test_a_second_process_on_the_same_run_directory_is_refused_and_the_first_continues",  # noqa: E501
    "test_integrity.py::test_nan_state_is_never_a_good_checkpoint_and_resume_uses_the_lower_learning_rate",  # noqa: E501
    "test_gan_families.py::test_mirrored_run_of_a_gan_family_in_a_subprocess",
    # Whole conversions of tiny models (each about 50-150 s under load).
    "test_models.py::test_keep_known_file_returns_the_input_outside_the_hole_bit_for_bit",
    "test_new_archs.py::test_imputed_unmask_is_smaller_than_gated_and_converts_to_int8",
    "test_quant_modes.py::test_cli_keep_float_and_prune_report",
    "test_convert.py::test_int8_with_uint8_io",
    "test_convert.py::test_a_model_with_the_mask_as_second_input_converts_and_runs_by_name",
    "test_validate.py::test_leaky_form_prelu_keeps_the_function_and_runs_all_of_srgan_int8_in_xnnpack",  # noqa: E501
)


def layer_of(filename: str) -> str:
    return next((layer for layer, files in LAYERS.items() if filename in files), "e2e")


def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(layer_of(item.path.name))
        name = f"{item.path.name}::{item.originalname}"
        if layer_of(item.path.name) != "e2e" and (
                name in END_TO_END or set(TRAINED_RUNS) & set(item.fixturenames)):
            item.add_marker("e2e")
    rank = {name: i for i, name in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept


@pytest.fixture
def tiny_cfg():
    return tiny_config()


@pytest.fixture(scope="session")
def trained_tiny_run(tmp_path_factory):
    """A tiny V-Net trained supervised for a few hundred steps (shared, built once)."""
    from tfface.train import run

    def build(folder):
        cfg = tiny_config(epochs=3, steps_per_epoch=60, adv_weight=0.0, g_lr=2e-3,
                          save_every_steps=1000)
        result = run(cfg, os.path.join(folder, "vnet-tiny"), progress=False)
        assert result.status == "completed"

    return os.path.join(built_once(tmp_path_factory, "runs-vnet", build), "vnet-tiny")


@pytest.fixture(scope="session")
def tiny_int8_file(trained_tiny_run, tmp_path_factory):
    """The tiny run converted to a full-integer .tflite (with its card) in its run
    directory, as by default, built once."""
    from tflite import convert

    def build(_):
        assert convert.main(["--int8", "--run", trained_tiny_run, "--samples", "100"]) == 0

    built_once(tmp_path_factory, "vnet-int8", build)
    return os.path.join(trained_tiny_run, "model_int8.tflite")


@pytest.fixture(scope="session")
def trained_tiny_sr_run(tmp_path_factory):
    """A tiny SRGAN generator (x4, 8 -> 32 px) trained on the pixel loss only for 80
    steps (the pre-training phase; about 15 s), shared and built once."""
    from tfface.config import resolve
    from tfface.train import run

    def build(folder):
        cfg = resolve("srgan", "tiny", {"train": {"epochs": 2, "steps_per_epoch": 40,
                                                  "pretrain_steps": 80, "g_lr": 2e-3,
                                                  "save_every_steps": 1000}})
        result = run(cfg, os.path.join(folder, "srgan-tiny"), progress=False)
        assert result.status == "completed"

    return os.path.join(built_once(tmp_path_factory, "runs-srgan", build), "srgan-tiny")


@pytest.fixture(scope="session")
def tiny_sr_float_file(trained_tiny_sr_run, tmp_path_factory):
    """The tiny SR run converted to a float .tflite (with its card) in its run directory,
    built once."""
    from tflite import convert

    def build(_):
        assert convert.main(["--float", "--run", trained_tiny_sr_run]) == 0

    built_once(tmp_path_factory, "srgan-float", build)
    return os.path.join(trained_tiny_sr_run, "model_float.tflite")


class Interrupt(keras.callbacks.Callback):
    """Raise KeyboardInterrupt after a given training step, like a Ctrl-C or a killed job."""

    def __init__(self, at_step: int):
        super().__init__()
        self.at_step = at_step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.g_optimizer.iterations.numpy()) == self.at_step:
            raise KeyboardInterrupt


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (held open together, so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@contextlib.contextmanager
def data_service_processes(log_dir, workers: int = 2, timeout: float = 300):
    """A tf.data service on loopback, started with the project's CLI
    (``python -m pipelines.data_service``): a dispatcher and ``workers`` workers, each its
    own process; yields the ``grpc://localhost:PORT`` address trainers use.

    Separate processes are what users run, and they are killed at once at the end. Their
    workers cannot run Python callbacks of the trainer's process, so the synthetic face
    source needs in-process workers (tests/test_data_service.py); folders work here.
    """
    port = free_ports(1)[0]
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    base = [sys.executable, "-m", "pipelines.data_service"]
    commands = [base + ["--dispatcher", "--port", str(port)]] + [
        base + ["--worker", "--dispatcher-address", f"localhost:{port}",
                "--worker-host", "localhost"] for _ in range(workers)]
    procs, logs = [], []
    try:
        for i, cmd in enumerate(commands):
            path = os.path.join(str(log_dir), f"data-service-{i}.log")
            logs.append(path)
            with open(path, "w") as out:
                procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                              env=env))
            ready = "listening on port" if i == 0 else "serving for dispatcher"
            deadline = time.monotonic() + timeout
            while ready not in open(path).read():
                if procs[-1].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(cmd[2:])} did not start:\n"
                                       + open(path).read()[-2000:])
                time.sleep(0.2)
        yield f"grpc://localhost:{port}"
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(timeout=30)


def astronaut_crop(dx=0, dy=0, angle=0.0):
    """The astronaut's face as a 128 px eval crop (framed as faces-dev's), moved or turned."""
    import cv2
    from skimage import data

    img = data.astronaut()
    if angle:
        rot = cv2.getRotationMatrix2D((220.0, 120.0), angle, 1.0)
        img = cv2.warpAffine(img, rot, img.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
    crop = img[19 + dy:203 + dy, 130 + dx:314 + dx]
    return cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA)


def synthetic_face_folder(root, count: int, size: int) -> str:
    """A folder of ``count`` built-in synthetic faces (seed 5) at ``size`` px, as PNG files."""
    import cv2

    from tfface.data.sources import render_synthetic_face

    for i in range(count):
        img, _ = render_synthetic_face(5, i, size)
        cv2.imwrite(str(root / f"f{i:02d}.png"), img[:, :, ::-1])
    return str(root)
