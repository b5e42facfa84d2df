"""Integrity: no run or output is silently lost, and the NaN advice works.

Each test proves one guarantee of docs/reliability.md. Runs use the tiny
V-Net at 32 px, supervised, with the ``boxes`` occlusion only (cheap to trace).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
from types import SimpleNamespace

import tfface  # noqa: F401  (must precede tensorflow: selects tf_keras)

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfface import keras
from tfface.config import ConfigError, parse_set, resolve
from tfface.fileio import TMP_MARK

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, TFFACE_SKIP_MEMORY_CHECK="1")


def small_cfg(**train):
    over = {"data": {"image_size": 32, "eval_count": 2, "occlusions": {"boxes": 1.0},
                     "eval_occlusions": {"boxes": 1.0}},
            "train": dict({"adv_weight": 0.0, "batch_size": 2, "sample_count": 2,
                           "epochs": 1, "steps_per_epoch": 2}, **train)}
    return resolve("vnet", "tiny", over)


def snapshot(folder) -> dict[str, bytes]:
    """Every file under ``folder`` with its content (what 'nothing was changed' means)."""
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = fh.read()
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A completed tiny run (2 steps): config, checkpoints, best/last weights, summary."""
    from tfface.train import run

    run_dir = str(tmp_path_factory.mktemp("finished") / "run")
    res = run(small_cfg(), run_dir, progress=False)
    assert res.status == "completed" and res.step == 2
    return run_dir


@pytest.fixture(scope="module")
def model_run(tmp_path_factory):
    """A run directory (config.json + best weights) of an untrained tiny V-Net at 32 px."""
    from tfface.models import get_arch

    run_dir = tmp_path_factory.mktemp("model_run")
    cfg = small_cfg()
    cfg.save(run_dir / "config.json")
    tf.keras.utils.set_random_seed(0)
    get_arch("vnet").build_generator(cfg).save_weights(str(run_dir / "best.weights.h5"))
    return str(run_dir)


# ===================================================================== run directories


def test_resume_without_checkpoints_is_refused_and_keeps_every_result(finished_run, tmp_path,
                                                                       capsys):
    """A finished run whose checkpoints/ folder is gone (or empty) is not retrained from
    step 0 over its best weights: --resume, the same --run-dir command and the library
    all refuse with one line that says how to start fresh, and change no file."""
    from pipelines import train as train_cli
    from tfface.train import run

    run_dir = str(tmp_path / "run")
    shutil.copytree(finished_run, run_dir)
    shutil.rmtree(os.path.join(run_dir, "checkpoints"))
    before = snapshot(run_dir)
    assert "best.weights.h5" in before and json.loads(before["summary.json"])["status"] == \
        "completed"
    for argv in (["--resume", run_dir, "--quiet"],
                 ["--arch", "vnet", "--preset", "tiny", "--run-dir", run_dir, "--quiet"]):
        assert train_cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert ("holds the results of an earlier run (best.weights.h5, last.weights.h5, "
                "metrics.csv; summary.json: completed at step 2/2); it has no checkpoint to "
                "continue from (checkpoints/ is missing or empty)") in err, err
        assert "choose a new --run-dir" in err
        assert snapshot(run_dir) == before
    os.mkdir(os.path.join(run_dir, "checkpoints"))  # an empty folder: the same
    with pytest.raises(ConfigError, match="has no checkpoint to continue from"):
        run(small_cfg(), run_dir, progress=False)
    assert snapshot(run_dir) == before

    # A new run over a directory that still has its checkpoints is refused as well
    # (resume=False would start from step 0).
    intact = str(tmp_path / "intact")
    shutil.copytree(finished_run, intact)
    kept = snapshot(intact)
    with pytest.raises(ConfigError, match=r"\(best\.weights\.h5, .*checkpoints/.*\); it would "
                                          r"start from step 0"):
        run(small_cfg(), intact, resume=False, progress=False)
    assert snapshot(intact) == kept


def test_resume_may_change_learning_rates_and_length_but_not_the_model_or_data(finished_run,
                                                                               tmp_path,
                                                                               capsys):
    from pipelines import train as train_cli
    from tfface.train.runner import RESUMABLE_KEYS, resume_config

    run_dir = str(tmp_path / "run")
    shutil.copytree(finished_run, run_dir)
    before = snapshot(run_dir)
    for argv, key in ([["--set", "data.image_size=64"], "data.image_size"],
                      [["--set", "model.params.filter_num=[4, 8, 16]"],
                       "model.params.filter_num"],
                      [["--batch-size", "8"], "train.batch_size"],
                      [["--set", "train.adv_weight=1"], "train.adv_weight"]):
        assert train_cli.main(["--resume", run_dir, "--quiet", *argv]) == 2
        err = capsys.readouterr().err
        assert f"error: {key} cannot change when resuming {run_dir}" in err, err
        assert "Settings that may change on resume: train.g_lr, train.d_lr" in err
        assert "start a new run (another --run-dir)" in err
    assert train_cli.main(["--resume", run_dir, "--set", "train.g_lr=abc"]) == 2
    assert "train.g_lr must be a number, got 'abc'" in capsys.readouterr().err
    assert snapshot(run_dir) == before

    # Allowed: more epochs and a lower learning rate (the NaN test below trains with it).
    cfg = resume_config(run_dir, parse_set(["train.epochs=2", "train.g_lr=1e-5"]))
    assert (cfg.train.epochs, cfg.train.g_lr) == (2, 1e-5)
    assert {"train.g_lr", "train.d_lr", "train.epochs", "train.max_minutes"} <= set(RESUMABLE_KEYS)
    assert snapshot(run_dir) == before  # nothing is saved before the run starts


class Gate(keras.callbacks.Callback):
    """Pause training after step 1 until ``release`` is set (a run that is mid-way)."""

    def __init__(self):
        super().__init__()
        self.reached, self.release = threading.Event(), threading.Event()

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.g_optimizer.iterations.numpy()) == 1:
            self.reached.set()
            assert self.release.wait(300), "the test never released the gate"


def test_a_second_process_on_the_same_run_directory_is_refused_and_the_first_continues(
        tmp_path):
    """A run trains (paused mid-way); a second `pipelines.train` process on the same
    folder exits 2 naming the first (pid, host) and changes nothing; the first then
    completes normally and leaves no lock behind."""
    from tfface.train import run
    from tfface.runlock import lock_path

    run_dir = str(tmp_path / "run")
    cfg = small_cfg(save_every_steps=1)
    gate = Gate()
    box = {}
    first = threading.Thread(target=lambda: box.update(
        res=run(cfg, run_dir, progress=False, extra_callbacks=[gate])), daemon=True)
    first.start()
    try:
        assert gate.reached.wait(300), "the first run did not start"
        # (TensorBoard's writer may flush on its own clock: logs/ is left out.)
        before = {k: v for k, v in snapshot(run_dir).items() if not k.startswith("logs")}
        second = subprocess.run(
            [sys.executable, "-m", "pipelines.train", "--resume", run_dir, "--quiet"],
            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
        after = {k: v for k, v in snapshot(run_dir).items() if not k.startswith("logs")}
        assert after == before  # nothing written, not even a config
    finally:
        gate.release.set()
        first.join(300)
    assert second.returncode == 2, second.stderr[-2000:]
    err = second.stderr.strip().splitlines()[-1]
    assert err.startswith(f"error: the run directory '{run_dir}' is in use by process pid "
                          f"{os.getpid()} on host {socket.gethostname()}"), err
    assert "nothing was changed. Wait for it to finish or choose another --run-dir." in err
    assert "Traceback" not in second.stderr

    res = box["res"]
    assert (res.status, res.step, res.resumed_from) == ("completed", 2, 0)
    rows = open(os.path.join(run_dir, "metrics.csv")).read().strip().splitlines()
    assert len(rows) == 2  # header + one row per epoch: no interleaved second writer
    assert not os.path.exists(lock_path(run_dir))


HOLDER = r"""
import fcntl, json, os, socket, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                         "command": "holder"}).encode())
print("locked", flush=True)
time.sleep(600)
"""


def test_a_lock_is_refused_while_its_holder_lives_and_taken_over_once_it_is_killed(tmp_path):
    """The lock is flock(2): the kernel drops it with the process (even on SIGKILL), so
    the lock file a killed process leaves behind never blocks the next run."""
    from tfface.runlock import DirBusyError, DirLock, lock_path

    folder = tmp_path / "run"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, lock_path(folder)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DirBusyError, match=rf"in use by process pid {holder.pid} on host "
                                               rf"{socket.gethostname()}, running `holder`"):
            DirLock(folder).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.stdout.close()
    stale = json.load(open(lock_path(folder)))
    assert stale["pid"] == holder.pid  # the dead holder's record is still there ...
    with DirLock(folder) as lock:  # ... and does not block
        assert json.load(open(lock.path))["pid"] == os.getpid()
        with pytest.raises(DirBusyError, match=rf"pid {os.getpid()}"):
            DirLock(folder).acquire()  # held: even a second lock in this process is refused
    assert not os.path.exists(lock_path(folder))
    # Without flock (some network file systems), a dead pid on this host is taken over.
    with open(lock_path(folder), "w") as f:
        json.dump({"pid": holder.pid, "host": socket.gethostname()}, f)
    lock = DirLock(folder)
    lock._pid_rule()  # no error: the recorded process is dead
    with open(lock_path(folder), "w") as f:
        json.dump({"pid": os.getppid(), "host": socket.gethostname()}, f)
    with pytest.raises(DirBusyError, match=rf"pid {os.getppid()}"):
        lock._pid_rule()


def test_a_conversion_into_a_folder_another_conversion_writes_to_is_refused(model_run,
                                                                             tmp_path, capsys):
    """Two `tflite.convert` into one folder at once could pair one's .tflite with the
    other's card: the second is refused (exit 2, naming the first) and writes nothing."""
    from tflite import convert
    from tfface.runlock import lock_path

    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, lock_path(out, "convert")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = convert.main(["--float", "--run", model_run, "--out-dir", str(out)])
    finally:
        holder.kill()
        holder.wait(30)
        holder.stdout.close()
    err = capsys.readouterr().err
    assert code == 2 and f"error: the output folder '{out}' is in use by process pid " \
        f"{holder.pid}" in err and "or pass another --out-dir." in err, err
    assert os.listdir(out) == [".tfface-convert.lock"]  # the holder's; nothing of ours


# ===================================================================== restore


def _img(h, w, seed):
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), rng.integers(0, 255, 3), np.uint8)
    color = tuple(int(v) for v in rng.integers(0, 255, 3))
    cv2.circle(img, (w // 2, h // 2), min(h, w) // 3, color, -1)
    return img


def _video(path, frames, size=64, noise=False):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (size, size))
    rng = np.random.default_rng(0)
    for i in range(frames):
        w.write(rng.integers(0, 255, (size, size, 3), dtype=np.uint8) if noise else
                _img(size, size, i))
    w.release()


def test_inputs_that_differ_only_in_extension_get_distinct_outputs(model_run, tmp_path, capsys):
    from pipelines import restore as restore_cli

    src = tmp_path / "in"
    src.mkdir()
    sizes = {"a.png": (40, 30), "a.jpg": (44, 36), "a.PNG": (48, 40)}
    for name, (h, w) in sizes.items():
        ok, buf = cv2.imencode(".jpg" if name.endswith("jpg") else ".png", _img(h, w, h))
        (src / name).write_bytes(buf.tobytes())
    _video(src / "a.mp4", 3, size=32)
    out = tmp_path / "out"
    args = [str(src), "--model", model_run, "--out", str(out), "--quiet"]
    assert restore_cli.main(args) == 0
    printed = capsys.readouterr().out
    # the video is restored; the drawn photos have no face and are copied unchanged
    assert "Restored 1 file(s)" in printed and "Kept" not in printed
    assert "3 photo(s) with nothing to restore were copied unchanged" in printed
    assert sorted(os.listdir(out)) == ["a_PNG.png", "a_jpg.png", "a_mp4.mp4", "a_png.png"]
    for name, (h, w) in sizes.items():  # each output is its own input's restoration
        stem, ext = name.split(".")
        assert cv2.imread(str(out / f"{stem}_{ext}.png")).shape == (h, w, 3), name
    assert restore_cli.output_path("o", "sub/clip.MOV") == os.path.join("o", "sub", "clip_MOV.mp4")

    # "Kept" is said only of outputs that existed before the run.
    os.remove(out / "a_png.png")
    os.remove(out / "a_mp4.mp4")
    assert restore_cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "Restored 1 file(s)" in printed and "Kept 2 existing output(s)" in printed
    assert "1 photo(s) with nothing to restore were copied unchanged" in printed

    # Two inputs given with the same relative name never share (or 'keep') one output.
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.png").write_bytes((src / "a.jpg").read_bytes())
    out2 = tmp_path / "out2"
    assert restore_cli.main([str(src / "a.png"), str(other / "a.png"), "--model", model_run,
                             "--out", str(out2), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "Restored 0 file(s)" in printed.out and "Kept" not in printed.out
    assert "1 photo(s) with nothing to restore were copied unchanged" in printed.out
    assert f"{other / 'a.png'}: its output {out2 / 'a_png.png'} is already the output of " \
           f"{src / 'a.png'}" in printed.err
    assert cv2.imread(str(out2 / "a_png.png")).shape == (40, 30, 3)  # the first one's


def _file_size_limit(limit):
    def apply():
        # The kernel refuses writes past ``limit`` bytes (EFBIG), as a full disk refuses
        # them (ENOSPC); SIGXFSZ is ignored so the write fails instead of killing.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


LIMIT = 8_000


def test_a_video_written_to_a_full_disk_is_reported_failed_and_not_kept(model_run, tmp_path,
                                                                        capsys):
    """The disk fills up while a restored video is written: the restore runs in a
    process whose files cannot grow past 8 kB (RLIMIT_FSIZE: the kernel refuses the
    write like a full disk, for the real OpenCV writer, without root or a tmpfs). OpenCV
    drops the failed frames and the index without an error; the restore reports the
    video failed, removes the partial file, and the next run restores it completely."""
    from pipelines import restore as restore_cli

    clip = tmp_path / "clip.mp4"
    _video(clip, 30, noise=True)  # noise compresses badly: the restored MP4 is ~24 kB
    out = tmp_path / "out"
    out.mkdir()
    argv = [str(clip), "--model", model_run, "--out", str(out), "--quiet"]
    proc = subprocess.run([sys.executable, "-m", "pipelines.restore", *argv], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=_file_size_limit(LIMIT))
    assert proc.returncode == 2, (proc.stdout, proc.stderr[-2000:])
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith(f"error: cannot write {out / 'clip_mp4.mp4'}: the written video is "
                          "incomplete ("), err
    assert "of 30 frames read back; is the disk full?); it was not kept" in err
    assert "Restored" not in proc.stdout and "Traceback" not in proc.stderr
    assert os.listdir(out) == []  # neither the video nor a temporary file

    assert restore_cli.main(argv) == 0  # the next run (disk freed) does the work
    assert "Restored 1 file(s)" in capsys.readouterr().out
    cap = cv2.VideoCapture(str(out / "clip_mp4.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 30 and cap.read()[0]
    cap.release()
    assert os.path.getsize(out / "clip_mp4.mp4") > 2 * LIMIT  # the limit did cut it
    assert not [f for f in os.listdir(out) if TMP_MARK in f]


# ===================================================================== NaN recovery


class PoisonMovingMean(keras.callbacks.Callback):
    """After step 3, a NaN in a batch-norm moving mean: the training loss stays finite
    (training uses batch statistics), only the saved state would be broken."""

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.g_optimizer.iterations.numpy()) == 3:
            v = next(v for v in self.model.generator.non_trainable_variables
                     if "moving_mean" in v.name)
            v.assign(tf.fill(v.shape, np.nan))


class FirstStep(keras.callbacks.Callback):
    """The optimizer's learning rate and the largest weight change of the first step."""

    def on_train_batch_begin(self, batch, logs=None):
        if not hasattr(self, "lr"):
            self.w0 = [v.numpy() for v in self.model.generator.trainable_variables]

    def on_train_batch_end(self, batch, logs=None):
        if not hasattr(self, "lr"):
            self.lr = float(self.model.g_optimizer.learning_rate.numpy())
            self.delta = max(float(np.max(np.abs(v.numpy() - w)))
                             for v, w in zip(self.model.generator.trainable_variables, self.w0))


def test_nan_state_is_never_a_good_checkpoint_and_resume_uses_the_lower_learning_rate(
        tmp_path, capsys, monkeypatch):
    from pipelines import train as train_cli
    from tfface import train as train_pkg
    from tfface.train import callbacks as cbs
    from tfface.train import run

    run_dir = str(tmp_path / "run")
    cfg = small_cfg(epochs=3, save_every_steps=2, g_lr=1e-2)
    res = run(cfg, run_dir, progress=False, extra_callbacks=[PoisonMovingMean()])
    assert (res.status, res.step) == ("nan", 4)
    err = capsys.readouterr().err
    assert ("Training stopped: the model state became NaN/Inf "
            "(vnet_input_conv_0_bn/moving_mean:0) at step 4") in err, err
    assert (f"resume from it with lower learning rates: python -m pipelines.train --resume "
            f"{run_dir} --set train.g_lr=0.001") in err
    # The poisoned state of step 4 was not saved: step 2 is the newest checkpoint, and
    # every file of the run holds finite values.
    assert tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")).endswith("-2")
    from tfface.rundir import load_generator

    for which in ("best", "last"):
        _, gen = load_generator(run_dir, which)
        assert all(np.all(np.isfinite(w)) for w in gen.get_weights()), which

    # The advice, followed through the CLI: resume with a 1000x lower learning rate.
    probe = FirstStep()
    real_run = train_pkg.run
    monkeypatch.setattr(train_pkg, "run", lambda *a, **kw: real_run(
        *a, **dict(kw, extra_callbacks=[probe])))
    assert train_cli.main(["--resume", run_dir, "--set", "train.g_lr=1e-5", "--epochs", "2",
                           "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Resuming with changed settings: train.epochs 3 -> 2; train.g_lr 0.01 -> 1e-05." \
        in out
    assert f"Resuming {run_dir} from step 2/4." in out
    assert probe.lr == pytest.approx(1e-5)  # not the 1e-2 the checkpoint restored
    # Adam moves each weight by about the learning rate per step: measured 1.1e-5 here,
    # and 1.1e-2 when the optimizer kept the 1e-2 its checkpoint restored.
    assert 0 < probe.delta < 1e-4, probe.delta
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert (summary["status"], summary["step"], summary["resumed_from"]) == ("completed", 4, 2)
    assert np.isfinite(summary["final"]["val_psnr"])

    # A checkpoint that already holds a NaN (written before this check existed) is
    # skipped on resume for the previous one.
    v = tf.Variable([1.0, 2.0])
    ckpt = tf.train.Checkpoint(v=v)
    manager = tf.train.CheckpointManager(ckpt, str(tmp_path / "ck"), max_to_keep=2)
    manager.save(checkpoint_number=1)
    v.assign([np.nan, 2.0])
    manager.save(checkpoint_number=2)
    from tfface.train.runner import restore_newest_good

    assert restore_newest_good(ckpt, manager, str(tmp_path), [v]).endswith("ckpt-1")
    assert v.numpy().tolist() == [1.0, 2.0]
    assert "non-finite values in Variable:0" in capsys.readouterr().err
    assert cbs.nonfinite_variables([tf.Variable([1.0]), tf.Variable(3)]) == []


def test_a_finite_divergence_gives_a_warning_line(caplog):
    """PSNR collapsing far below the run's best, or the pixel loss exploding, is
    reported (log, stderr, summary.json) although nothing is NaN."""
    import logging

    from tfface.train.callbacks import DivergenceWarning

    best = tf.Variable(30.0, dtype=tf.float64)
    cb = DivergenceWarning(best)
    cb.set_model(SimpleNamespace(g_optimizer=SimpleNamespace(iterations=tf.Variable(100))))
    with caplog.at_level(logging.WARNING, logger="tfface.train"):
        cb.on_epoch_end(0, {"val_psnr": 29.0, "pixel": 0.02})
        cb.on_epoch_end(1, {"val_psnr": 25.0, "pixel": 0.05})  # ordinary noise: quiet
        assert cb.warnings == []
        cb.on_epoch_end(2, {"val_psnr": 17.5, "pixel": 0.9})
    assert cb.warnings == [
        "the run may be diverging: val_psnr fell to 17.50 dB at epoch 3 (step 100), 12.5 dB "
        "below its best (30.00 dB). Consider resuming from an earlier checkpoint with a lower "
        "learning rate (--resume RUN_DIR --set train.g_lr=...).",
        "the run may be diverging: the pixel loss of epoch 3 (step 100) is 0.9, 45x its lowest "
        "(0.02). Consider a lower learning rate (--resume RUN_DIR --set train.g_lr=...).",
    ]
    assert [r.getMessage() for r in caplog.records] == cb.warnings
