"""Reliability: bad input, faults and interruptions never cost work or end in a traceback.

Each test proves one guarantee of the reliability issue; docs/reliability.md lists them. Runs
use the tiny V-Net at 32 px with the ``boxes`` occlusion only (cheap to trace).
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time

import tfface  # noqa: F401  (must precede tensorflow: selects tf_keras)

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfface.config import ConfigError, resolve
from tfface.data import sources
from tfface.data.sources import FolderSource, SourceError, make_source
from tfface.data.sources.scan import _decode_image_bytes
from tfface.fileio import TMP_MARK, OutputDirError, atomic_path, atomic_write

from bounded import run_bounded

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# One small run configuration, as command-line flags (the SIGKILL test re-runs the
# command) and as the overrides of resolve().
RUN_FLAGS = ["--arch", "vnet", "--preset", "tiny", "--image-size", "32", "--batch-size", "2",
             "--epochs", "1", "--steps-per-epoch", "40", "--deterministic", "--quiet",
             "--set", 'data.occlusions={"boxes": 1}', "--set", 'data.eval_occlusions={"boxes": 1}',
             "--set", "data.eval_count=2", "--set", "train.sample_count=2",
             "--set", "train.save_every_steps=4"]




def encode(img: np.ndarray, ext: str, params=()) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


def face(seed: int, h: int = 80, w: int = 80) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), rng.integers(0, 255, 3), np.uint8)
    color = tuple(int(v) for v in rng.integers(0, 255, 3))
    cv2.circle(img, (w // 2, h // 2), min(h, w) // 3, color, -1)
    return img


def data_cfg(path, size=64, **kw):
    from tfface.config import DataConfig

    return DataConfig(source="folder", data_dir=str(path), image_size=size, eval_count=2, **kw)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A run directory (config.json + best weights) of an untrained tiny V-Net at 32 px."""
    from tfface.models import get_arch

    run_dir = tmp_path_factory.mktemp("small_run")
    cfg = resolve("vnet", "tiny", {"data": {"image_size": 32, "eval_count": 2,
                                            "occlusions": {"boxes": 1.0},
                                            "eval_occlusions": {"boxes": 1.0}},
                                   "train": {"adv_weight": 0.0}})
    cfg.save(run_dir / "config.json")
    tf.keras.utils.set_random_seed(0)
    get_arch("vnet").build_generator(cfg).save_weights(str(run_dir / "best.weights.h5"))
    return str(run_dir)


# ===================================================================== data


def _pil_bytes(img, mode, fmt, **kw) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).convert(mode).save(buf, fmt, **kw)
    return buf.getvalue()


def test_folder_counts_every_kind_of_bad_file_in_one_warning_and_a_log(tmp_path, caplog,
                                                                       monkeypatch):
    root = tmp_path / "faces"
    (root / "sub").mkdir(parents=True)
    good = encode(face(1), ".jpg")
    files = {
        "ok1.jpg": good, "sub/ok2.png": encode(face(2), ".png"),
        "ok3.webp": encode(face(3), ".webp"),
        "truncated.jpg": good[: len(good) // 2],
        "zero.png": b"",
        "notes.jpg": b"just some text, not an image at all\n" * 4,
        "locked.jpg": good,
        "cmyk.jpg": _pil_bytes(face(4)[..., ::-1], "CMYK", "JPEG"),
        "sixteen.png": encode(np.full((80, 80, 3), 40000, np.uint16), ".png"),
        "gray.png": encode(cv2.cvtColor(face(5), cv2.COLOR_BGR2GRAY), ".png"),
        "rgba.png": encode(np.dstack([face(6), np.full((80, 80), 128, np.uint8)]), ".png"),
        "tiny.png": encode(face(7, 16, 16), ".png"),
        "huge.jpg": encode(np.full((8000, 8000, 3), 90, np.uint8), ".jpg"),
        "huge.png": _pil_bytes(np.zeros((8000, 8000), np.uint8), "L", "PNG"),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    # An unreadable file: real permissions where they apply; as root (who reads
    # everything) the same failure is injected at the open() the scan makes.
    os.chmod(root / "locked.jpg", 0)
    if IS_ROOT:
        real_open = sources.scan.open_regular

        def guarded_open(path, *a, **kw):
            if str(path).endswith("locked.jpg"):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, *a, **kw)

        monkeypatch.setattr(sources.scan, "open_regular", guarded_open)  # the scan's open()

    run_dir = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="tfface.data.sources"):
        src = FolderSource(data_cfg(root), log_dir=str(run_dir))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    scan = src.scan
    assert scan.counts() == {
        "unreadable": 1, "zero-byte": 1, "not-an-image": 1, "truncated": 1,
        "too-small": 1, "too-large": 1,
        "grayscale": 1, "alpha": 1, "16-bit": 1, "cmyk": 1, "reduced": 1,
    }
    msg = warnings[0]
    assert str(root) in msg and "skipping 6 of 14 files" in msg
    for words in ("1 unreadable", "1 zero-byte", "1 not an image", "1 truncated", "1 too small",
                  "1 too large", "converting 5", "1 CMYK", "1 grayscale", "1 16-bit",
                  "RGBA/transparent", "huge JPEG"):
        assert words in msg, (words, msg)
    log_path = run_dir / "folder_scan.log"
    assert f"Details: {log_path}" in msg
    lines = log_path.read_text().splitlines()
    for name, reason in [("locked.jpg", "unreadable"), ("zero.png", "zero-byte"),
                         ("notes.jpg", "not-an-image"), ("truncated.jpg", "truncated"),
                         ("tiny.png", "too-small"), ("huge.png", "too-large")]:
        assert any(line.startswith(f"skipped\t{reason}\t{name}\t") for line in lines), name
    assert any(line.startswith("converted\treduced\thuge.jpg") for line in lines)
    assert "16x16 px" in log_path.read_text() and "8000x8000 px (64 MP)" in log_path.read_text()

    # Every usable file decodes (no undecodable-file warning), 8 files in all.
    assert src.num_examples("train") + src.num_examples("eval") == 8
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tfface.data.sources"):
        els = list(src.dataset("train").take(src.num_examples("train")).as_numpy_iterator())
        els += list(src.dataset("eval").as_numpy_iterator())
    assert not caplog.records, caplog.text
    assert len(els) == 8 and all(e["image"].shape == (64, 64, 3) for e in els)
    # The 8000x8000 JPEG is decoded by the JPEG decoder at 1/8 scale: no 192 MB buffer.
    assert scan.reduce == {"huge.jpg": 8}
    small = _decode_image_bytes(files["huge.jpg"], True, 8)
    assert small.shape == (1000, 1000, 3) and abs(int(small.mean()) - 90) <= 2


def test_folder_without_a_usable_image_is_an_error_naming_the_folder(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("hello")
    (root / "small.png").write_bytes(encode(face(1, 20, 20), ".png"))
    with pytest.raises(SourceError) as e:
        FolderSource(data_cfg(root), log_dir=str(tmp_path))
    text = str(e.value)
    assert f"no usable image in '{root}'" in text
    assert "1 zero-byte" in text and "1 not an image" in text and "1 too small" in text
    assert "data.min_image_side" in text and str(tmp_path / "folder_scan.log") in text
    # Lowering the minimum side makes the small image usable.
    src = FolderSource(data_cfg(root, min_image_side=16), log_dir=str(tmp_path))
    assert src.num_examples("train") == 1


def test_a_folder_whose_files_all_fail_to_decode_stops_instead_of_waiting_forever(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    for i in range(3):  # intact header and end, damaged pixel data: only decoding finds out
        body = bytearray(encode(face(i), ".png"))
        body[body.index(b"IDAT") + 40] ^= 0xFF
        (root / f"f{i}.png").write_bytes(bytes(body))
    src = FolderSource(data_cfg(root, size=32), log_dir=str(tmp_path))
    assert src.num_examples("train") == 2

    def first_train_element():
        return next(iter(src.dataset("train")))

    with pytest.raises(tf.errors.OpError, match="none of the 2 files of the train split"):
        run_bounded(first_train_element, 60)


def test_symlink_loops_and_unreadable_folders_neither_hang_nor_crash(tmp_path, monkeypatch):
    root = tmp_path / "faces"
    (root / "a" / "b").mkdir(parents=True)
    (root / "locked").mkdir()
    for rel in ("top.png", "a/one.png", "a/b/two.png", "locked/three.png"):
        (root / rel).write_bytes(encode(face(len(rel)), ".png"))
    os.symlink(root, root / "a" / "b" / "to_root")  # loop back to the top
    os.symlink(root / "a", root / "a" / "b" / "to_a")  # and a second loop
    os.symlink(root / "a" / "b" / "self", root / "a" / "b" / "self")  # a link to itself
    os.symlink(root / "missing.png", root / "dangling.png")  # a broken file link
    os.chmod(root / "locked", 0)
    if IS_ROOT:  # root lists every folder: inject the permission error instead
        real_scandir = os.scandir

        def guarded(path="."):
            if os.fspath(path).endswith("locked"):
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", guarded)
    try:
        src = run_bounded(lambda: FolderSource(data_cfg(root), log_dir=str(tmp_path)), 30)
    finally:
        os.chmod(root / "locked", 0o755)
    # Each real file once, however many links lead to it; the locked folder is reported.
    assert sorted(src.train_files + src.eval_files) == ["a/b/two.png", "a/one.png", "top.png"]
    problems = dict(src.scan.folder_problems)
    assert any("symbolic link loop" in why for why in problems.values()), problems
    assert "Permission denied" in problems["locked"]
    assert problems["dangling.png"] == "broken symbolic link"


def _corrupt(rng: np.random.Generator, seeds: list[bytes]) -> bytes:
    data = bytearray(seeds[rng.integers(len(seeds))])
    kind = rng.integers(5)
    if kind == 0:  # truncate anywhere
        return bytes(data[: rng.integers(0, len(data))])
    if kind == 1:  # flip bytes anywhere
        for i in rng.integers(0, len(data), rng.integers(1, 20)):
            data[i] ^= int(rng.integers(1, 256))
        return bytes(data)
    if kind == 2:  # a valid signature over random bytes, or a header claiming any size
        head = bytes(data[:32])
        body = bytearray(head) + rng.integers(0, 256, rng.integers(0, 3000), np.uint8).tobytes()
        if head[:4] == b"\x89PNG":
            body[16:24] = rng.integers(0, 256, 8, np.uint8).tobytes()  # width, height
        return bytes(body)
    if kind == 3:  # pure noise
        return rng.integers(0, 256, rng.integers(0, 2000), np.uint8).tobytes()
    # flip bytes in the header only
    for i in rng.integers(0, min(64, len(data)), 4):
        data[i] ^= int(rng.integers(1, 256))
    return bytes(data)


def test_fuzz_corrupted_images_through_the_folder_source_and_restore(tmp_path, small_run,
                                                                     capsys):
    """300 randomly damaged image files: no crash, no hang, every output well-formed."""
    from pipelines import restore as restore_cli

    rng = np.random.default_rng(2024)
    img = face(11, 60, 50)
    seeds = [encode(img, ".jpg"), encode(img, ".png"), encode(img, ".webp"), encode(img, ".bmp"),
             _pil_bytes(img, "CMYK", "JPEG"), _pil_bytes(img, "LA", "PNG")]
    root = tmp_path / "fuzz"
    root.mkdir()
    exts = [".jpg", ".png", ".webp", ".bmp", ".jpg", ".png"]
    for i in range(300):
        (root / f"f{i:03d}{exts[i % len(exts)]}").write_bytes(_corrupt(rng, seeds))
    for i, data in enumerate(seeds[:3]):  # some intact files
        (root / f"good{i}{exts[i]}").write_bytes(data)

    def read_all():
        src = FolderSource(data_cfg(root, size=32), log_dir=str(tmp_path))
        n = src.num_examples("train")
        train = list(src.dataset("train").take(n).as_numpy_iterator())
        return src, train, list(src.dataset("eval").as_numpy_iterator())

    src, train, evals = run_bounded(read_all, 120)
    assert 3 <= len(src.scan.usable) <= 303
    assert len(src.scan.usable) + len(src.scan.skipped_files) == 303
    assert train and evals
    for e in train + evals:
        assert e["image"].shape == (32, 32, 3) and e["image"].dtype == np.uint8

    out = tmp_path / "out"
    code = run_bounded(lambda: restore_cli.main([str(root), "--model", small_run, "--out",
                                                 str(out), "--quiet"]), 180)
    printed = capsys.readouterr()
    assert code == 0, printed.err
    written = sorted(os.listdir(out))
    assert {"good0_jpg.png", "good1_png.png", "good2_webp.png"} <= set(written)
    assert not [f for f in written if TMP_MARK in f]
    for name in written:  # every output is a complete image of its input's size
        restored = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        assert restored is not None and restored.ndim == 3, name
    assert "cannot be used" in printed.err


# ===================================================================== config


@pytest.mark.parametrize("flags, expected", [
    (["--set", "train.batchsize=4"],
     "unknown config key 'train.batchsize' (valid here: batch_size"),
    (["--set", "train.batch_size=four"], "train.batch_size must be an integer, got 'four'"),
    (["--set", "train.g_lr=fast"], "train.g_lr must be a number, got 'fast'"),
    (["--batch-size", "-3"], "train.batch_size must be an integer >= 1, got -3"),
    (["--set", "train.save_every_steps=0"],
     "train.save_every_steps must be an integer >= 1, got 0"),
    (["--set", "train.beta_1=1.5"], "train.beta_1 must be in [0, 1), got 1.5"),
    (["--image-size", "72"], "data.image_size must be a multiple of 16 for vnet"),
    (["--preset", "tiny", "--image-size", "36"], "data.image_size must be a multiple of 8"),
    (["--arch", "srgan", "--preset", "tiny", "--set", "data.scale=3"],
     "data.scale must be one of (2, 4) for srgan, got 3"),
    (["--set", "data.occlusions=boxes"], "data.occlusions must be a JSON object of numbers"),
    (["--set", "train=5"], "'train' is a section, not a value"),
])
def test_bad_config_values_fail_fast_naming_the_key_and_range(tmp_path, capsys, flags, expected):
    from pipelines import train as train_cli

    run_dir = tmp_path / "run"
    t0 = time.perf_counter()
    assert train_cli.main(flags + ["--run-dir", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err, err
    assert "Traceback" not in err
    assert not run_dir.exists()  # nothing was started
    assert time.perf_counter() - t0 < 30  # before any data or model work


def test_valid_range_message_suggests_sizes_that_work():
    with pytest.raises(ConfigError, match=r"got 72; e\.g\. 64 or 80"):
        resolve("vnet", "paper", {"data": {"image_size": 72}})
    cfg = resolve("vnet", "paper", {"train": {"g_lr": 1}})  # ints are fine for floats
    assert cfg.train.g_lr == 1.0 and isinstance(cfg.train.g_lr, float)


# ===================================================================== training


def test_run_dir_read_only_or_full_disk_is_a_clear_error_before_training(tmp_path, monkeypatch,
                                                                          capsys):
    from pipelines import train as train_cli
    from tfface import fileio
    from tfface.train import run

    cfg = train_cli.config_from_args(train_cli.build_parser().parse_args(RUN_FLAGS))
    # A run directory that cannot exist (its parent is a file).
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert train_cli.main(RUN_FLAGS + ["--run-dir", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write to the run directory '{blocker / 'run'}'" in err and "--run-dir" in err

    # A read-only folder: real permissions for a normal user; root writes anywhere, so
    # the file system's answer (EROFS) is injected into the write probe.
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    if IS_ROOT:
        def read_only(folder):
            raise OSError(errno.EROFS, "Read-only file system", folder)

        monkeypatch.setattr(fileio, "_probe_write", read_only)
    with pytest.raises(OutputDirError, match="is read-only"):
        run(cfg, str(ro / "run"), progress=False)
    os.chmod(ro, 0o755)
    monkeypatch.undo()

    # A disk with 5 MB free: refused with the estimate, before the first step.
    from tfface.train import runner

    real = fileio.shutil.disk_usage
    monkeypatch.setattr(fileio.shutil, "disk_usage",
                        lambda p: real(p)._replace(free=5_000_000))
    full = tmp_path / "full"
    with pytest.raises(OutputDirError, match=r"has 5\.0 MB free, but about \d+\.\d MB are needed"):
        run(cfg, str(full), progress=False)
    assert not (full / "checkpoints").exists() and not (full / "metrics.csv").exists()
    gen, disc = runner.build_models(cfg)
    assert runner.estimate_run_disk(gen, disc) > 3 * 4 * (gen.count_params() + disc.count_params())


def _latest_step(run_dir) -> int:
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """The uninterrupted run of RUN_FLAGS (deterministic ops), trained in-process."""
    from pipelines import train as train_cli
    from tfface.train import run

    cfg = train_cli.config_from_args(train_cli.build_parser().parse_args(RUN_FLAGS))
    run_dir = str(tmp_path_factory.mktemp("reference"))
    result = run(cfg, run_dir, progress=False)
    assert result.status == "completed" and result.step == 40
    return run_dir, result


def _checkpoint_arrays(run_dir) -> dict[str, np.ndarray]:
    path = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)
            if "save_counter" not in name}


def test_sigkill_at_any_moment_then_the_same_command_resumes_exactly(tmp_path, reference_run,
                                                                     capsys):
    """A real training process is killed with SIGKILL mid-run; running the same command
    again continues from its last checkpoint and ends bit-identical to a run that was
    never interrupted: same step counter, optimizer state and data position."""
    from pipelines import train as train_cli

    run_dir = str(tmp_path / "run")
    argv = RUN_FLAGS + ["--run-dir", run_dir]
    env = dict(os.environ, PYTHONPATH=ROOT, TFFACE_SKIP_MEMORY_CHECK="1")
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.train", *argv], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while _latest_step(run_dir) < 4:  # wait for a couple of checkpoints ...
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.time() < deadline, "the training process wrote no checkpoint"
            time.sleep(0.02)
        time.sleep(float(np.random.default_rng().uniform(0, 0.2)))  # ... then any moment
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _latest_step(run_dir)
    assert 4 <= killed_at < 40, killed_at  # it died mid-run

    assert train_cli.main(argv) == 0  # the very same command
    out = capsys.readouterr().out
    assert "resuming it with its saved config" in out
    assert f"Resuming {run_dir} from step {killed_at}/40." in out
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert summary["resumed_from"] == killed_at and summary["step"] == 40

    ref_dir, ref = reference_run
    got, want = _checkpoint_arrays(run_dir), _checkpoint_arrays(ref_dir)
    assert set(got) == set(want)
    # Both Adam optimizers (step counters and moments) are part of the comparison.
    for opt in ("g_optimizer", "d_optimizer"):
        assert f"{opt}/_iterations/.ATTRIBUTES/VARIABLE_VALUE" in got
        assert sum(k.startswith(f"{opt}/_variables/") for k in got) > 4
    assert int(got["g_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == 40
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_same_seed_gives_identical_losses_and_op_determinism_is_scoped(tmp_path, reference_run):
    from tensorflow.python.framework import config as tf_config

    from pipelines import train as train_cli
    from tfface.train import run

    cfg = train_cli.config_from_args(train_cli.build_parser().parse_args(RUN_FLAGS))
    assert cfg.train.deterministic
    was = tf_config.is_op_determinism_enabled()
    second = run(cfg, str(tmp_path / "again"), progress=False)
    assert tf_config.is_op_determinism_enabled() == was  # the switch is not left on
    ref_dir, ref = reference_run
    assert second.history["g_loss"] == ref.history["g_loss"]
    assert second.history["val_psnr"] == ref.history["val_psnr"]
    assert np.isfinite(second.history["g_loss"][0])
    got, want = _checkpoint_arrays(str(tmp_path / "again")), _checkpoint_arrays(ref_dir)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_eval_split_is_identical_across_runs_and_machines(tmp_path):
    from tfface.data.pipeline import make_dataset

    cfg = resolve("vnet", "tiny", {"data": {"image_size": 32, "eval_count": 4,
                                            "eval_occlusions": {"boxes": 1.0, "celeba_c": 1.0}}})
    tf.random.set_seed(1)
    np.random.seed(1)
    a = [{k: v.numpy() for k, v in b.items()} for b in make_dataset(cfg, "eval", batch_size=2)]
    tf.random.set_seed(999)  # global seeds of the process play no part
    np.random.seed(999)
    b = [{k: v.numpy() for k, v in b.items()} for b in make_dataset(cfg, "eval", batch_size=2)]
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)

    # Folder split membership depends only on the files' relative names (a keyed hash),
    # not on the machine, the folder's location, creation order or data.seed.
    names = [f"p{i:02d}.png" for i in range(30)]
    for where, order, seed in (("one", names, 1), ("elsewhere/two", names[::-1], 77)):
        root = tmp_path / where
        root.mkdir(parents=True)
        for n in order:
            (root / n).write_bytes(encode(face(int(n[1:3])), ".png"))
        src = make_source(data_cfg(root, size=32, seed=seed))
        assert src.eval_files == ["p00.png", "p19.png"], src.eval_files


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    from tfface.train.runner import restore_newest_good

    v = tf.Variable([0.0, 0.0])
    opt_step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(v=v, step=opt_step)
    manager = tf.train.CheckpointManager(ckpt, str(tmp_path / "checkpoints"), max_to_keep=2)
    for step in (2, 4):
        v.assign([float(step)] * 2)
        opt_step.assign(step)
        manager.save(checkpoint_number=step)
    # Leftovers of a write that was killed before its rename play no part.
    temp = tmp_path / "checkpoints" / "ckpt-6_temp"
    temp.mkdir()
    (temp / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x")
    data = tmp_path / "checkpoints" / "ckpt-4.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:3])  # the newest checkpoint is damaged afterwards
    v.assign([-1.0, -1.0])
    path = restore_newest_good(ckpt, manager, str(tmp_path))
    assert path.endswith("ckpt-2") and v.numpy().tolist() == [2.0, 2.0] and int(opt_step) == 2
    assert "ckpt-4 cannot be read" in capsys.readouterr().err
    (tmp_path / "checkpoints" / "ckpt-2.index").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="none of the checkpoints .* can be read"):
        restore_newest_good(ckpt, manager, str(tmp_path))


def test_a_checkpoint_that_cannot_be_written_stops_the_run_cleanly(tmp_path):
    """A disk that fills up during training: the run stops at once with the reason, and
    the checkpoints written before stay the newest complete ones."""
    from types import SimpleNamespace

    from tfface.train.callbacks import CheckpointSaver, NaNGuard

    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(step=step)
    manager = tf.train.CheckpointManager(ckpt, str(tmp_path / "checkpoints"), max_to_keep=2)
    saver = CheckpointSaver(manager, 2, NaNGuard())
    model = SimpleNamespace(g_optimizer=SimpleNamespace(iterations=step), stop_training=False)
    saver.set_model(model)
    step.assign(2)
    saver.on_train_batch_end(0)
    real_save = manager.save

    def full_disk(**kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    manager.save = full_disk
    step.assign(4)
    saver.on_train_batch_end(1)
    assert model.stop_training and saver.error == (
        "the checkpoint of step 4 could not be written ([Errno 28] No space left on device)")
    manager.save = real_save
    saver.on_epoch_end(0)  # nothing more is attempted after the failure
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")


def test_atomic_writes_keep_the_old_file_when_a_write_fails(tmp_path):
    target = tmp_path / "config.json"
    atomic_write(target, '{"a": 1}')
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write('{"a": 2, "half-writ')
            raise RuntimeError("killed mid-write")
    assert target.read_text() == '{"a": 1}'
    assert os.listdir(tmp_path) == ["config.json"]  # no temporary file left behind

    # A Keras weights file written through atomic_path is complete and loadable.
    from tfface import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with atomic_path(tmp_path / "last.weights.h5") as tmp:
        assert tmp.endswith(".weights.h5")  # the suffix chooses Keras' file format
        model.save_weights(tmp)
    model.load_weights(str(tmp_path / "last.weights.h5"))


# ===================================================================== conversion, harness


def test_convert_refuses_missing_and_foreign_run_directories(tmp_path, capsys):
    from tflite import convert

    out = tmp_path / "out"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"name": "another tool", "epochs": 3}))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"data": {"image_size": 6')
    empty = tmp_path / "empty"
    empty.mkdir()
    for run_dir, expected in [
        (tmp_path / "nope", "no such run directory"),
        (empty, "is not a run directory (no config.json)"),
        (foreign, "is not a usable tfface run configuration (unknown config key 'name'"),
        (broken, "is not a usable tfface run configuration"),
    ]:
        code = convert.main(["--int8", "--run", str(run_dir), "--out-dir", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and expected in err, err
        assert "Traceback" not in err
    assert not out.exists() or not os.listdir(out)


def test_empty_representative_dataset_is_a_clear_error_and_writes_nothing(small_run, tmp_path,
                                                                         monkeypatch, capsys):
    from tfface.export import convert as conversion
    from tflite import convert

    monkeypatch.setattr(conversion, "representative_inputs",
                        lambda cfg, n, with_targets=False: ([], None) if with_targets else [])
    out = tmp_path / "out"
    code = convert.main(["--int8", "--run", small_run, "--samples", "100", "--out-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "no representative samples" in err and "nothing was written" in err
    assert os.listdir(out) == []


@pytest.fixture(scope="module")
def float_tflite(tmp_path_factory):
    """A small float .tflite that takes 32 px ``occluded`` images (one conv layer)."""
    from tfface import keras
    from tfface.export.quantize import QuantizationConfig, converter_for

    x = keras.Input((32, 32, 3), name="occluded")
    model = keras.Model(x, keras.layers.Conv2D(3, 3, padding="same", name="restored")(x))
    path = tmp_path_factory.mktemp("tfl") / "model_float.tflite"
    path.write_bytes(converter_for(model, QuantizationConfig.for_float()).convert())
    return str(path)


def test_a_file_that_is_not_a_tflite_model_is_refused(tmp_path, float_tflite, small_run, capsys):
    """validate, LiteRunner and restore refuse it with one clear line, exit code 2."""
    from tflite import validate
    from tfface.lite import LiteRunner

    fake = tmp_path / "model.tflite"
    fake.write_bytes(b"PK\x03\x04 this is a zip, not a model" * 10)
    truncated = tmp_path / "cut.tflite"
    content = open(float_tflite, "rb").read()
    truncated.write_bytes(content[: len(content) // 2])
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    for path, expected in [(fake, "is not a TFLite model"), (empty, "is empty"),
                           (truncated, "cannot be loaded by the LiteRT interpreter")]:
        with pytest.raises(ValueError, match=expected):
            LiteRunner(str(path))
        out = tmp_path / f"report_{path.stem}"
        assert validate.main([str(path), "--out-dir", str(out)]) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err, err
        assert not out.exists()  # no report files for a failed validation

    from pipelines import restore as restore_cli

    photo = tmp_path / "p.png"
    photo.write_bytes(encode(face(1), ".png"))
    assert restore_cli.main([str(photo), "--model", str(fake), "--out", str(tmp_path / "r")]) == 2
    assert "is not a TFLite model" in capsys.readouterr().err


def test_a_tflite_whose_input_does_not_match_the_images_is_refused(tmp_path, float_tflite,
                                                                   capsys):
    from tfface.models import get_arch
    from tflite import validate
    from tfface.lite import LiteRunner

    runner = LiteRunner(float_tflite)
    with pytest.raises(ValueError, match=r"'occluded' of this .tflite file takes images of "
                                         r"shape \(32, 32, 3\).*got \(64, 64, 3\)"):
        runner(np.zeros((1, 64, 64, 3), np.float32))
    # A run that makes 64 px faces: validating the 32 px file against it is refused.
    run64 = tmp_path / "run64"
    run64.mkdir()
    cfg = resolve("vnet", "tiny", {"data": {"image_size": 64, "eval_count": 2,
                                            "eval_occlusions": {"boxes": 1.0}}})
    cfg.save(run64 / "config.json")
    get_arch("vnet").build_generator(cfg).save_weights(str(run64 / "best.weights.h5"))
    out = tmp_path / "report"
    assert validate.main([float_tflite, "--run", str(run64), "--out-dir", str(out),
                          "--images", "2"]) == 2
    err = capsys.readouterr().err
    assert "expects 'occluded' of shape (32, 32, 3), but the run" in err and "(64, 64, 3)" in err
    assert not out.exists()


# ===================================================================== restore


def test_restore_skips_non_images_refuses_unwritable_output_and_keeps_existing(small_run,
                                                                               tmp_path, capsys):
    from pipelines import restore as restore_cli

    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(encode(face(1, 50, 40), ".png"))
    (src / "notes.txt").write_text("not an image")
    (src / "fake.jpg").write_text("not an image either")
    out = tmp_path / "out"
    assert restore_cli.main([str(src), "--model", small_run, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "Restored 0 file(s)" in printed.out and "skipped 1 non-image file(s)" in printed.out
    assert "1 photo(s) with nothing to restore were copied unchanged" in printed.out  # no face
    assert f"{src / 'fake.jpg'}: not an image" in printed.err
    assert sorted(os.listdir(out)) == ["a_png.png"]

    # Existing outputs are kept without --overwrite.
    (out / "a_png.png").write_bytes(b"earlier result")
    assert restore_cli.main([str(src), "--model", small_run, "--out", str(out), "--quiet"]) == 0
    assert "Kept 1 existing output(s)" in capsys.readouterr().out
    assert (out / "a_png.png").read_bytes() == b"earlier result"
    assert restore_cli.main([str(src), "--model", small_run, "--out", str(out), "--quiet",
                             "--overwrite"]) == 0
    assert cv2.imread(str(out / "a_png.png")).shape == (50, 40, 3)

    # An output folder that cannot be written is a clear error before any work.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = restore_cli.main([str(src), "--model", small_run, "--out", str(blocker / "o")])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot write to the output folder '{blocker / 'o'}'" in err
    assert "--out DIR" in err
