"""Multi-worker training (``--strategy multiworker``): real worker processes on loopback.

Each scenario starts its workers once (every process imports TensorFlow, ~5-10 s) with
a ``TF_CONFIG`` on free loopback ports, the tiny V-Net at 32 px without batch norm
(its statistics are per worker, see docs/distributed.md) and a few steps; every
subprocess has a timeout and is killed in a ``finally``. ``pytest -k multiworker``
selects this file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import tfface  # noqa: F401  (tf_keras before TensorFlow)

from tfface.config import ConfigError

from conftest import data_service_processes, free_ports

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS, PER_EPOCH, BATCH = 8, 4, 4
TRAIN_ARGS = [
    "--arch", "vnet", "--preset", "tiny", "--image-size", "32", "--batch-size", str(BATCH),
    "--epochs", str(STEPS // PER_EPOCH), "--steps-per-epoch", str(PER_EPOCH),
    "--adv-weight", "0", "--quiet",
    "--set", 'data.occlusions={"boxes": 1}', "--set", "data.eval_count=4",
    "--set", "train.eval_batches=1", "--set", "train.sample_count=2",
    "--set", "train.save_every_steps=2", "--set", "model.params.batch_norm=false",
]
WEIGHT_TOL = 1e-5
"""Largest |difference| of any weight between 2 workers and 1 process after 8 Adam
steps: the same global batches, only the order of float additions in the all-reduce
differs (measured: see docs/distributed.md)."""
TIMEOUT = 900  # s per job: only a broken job waits this long (a loaded box took 5 min)


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


class Job:
    """Worker processes of one launch of a job; always ended by :meth:`stop`.

    ``cmd`` is the command of every worker, or a function of the worker index.
    """

    def __init__(self, cmd, ports, log_dir, tmp_dir, tag):
        self.procs, self.logs = [], []
        os.makedirs(tmp_dir, exist_ok=True)
        try:
            for i in range(len(ports)):
                env = dict(os.environ, TF_CONFIG=tf_config(ports, i), PYTHONPATH=ROOT,
                           TMPDIR=tmp_dir, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
                           PYTHONUNBUFFERED="1", TFFACE_SKIP_MEMORY_CHECK="1")
                path = os.path.join(log_dir, f"{tag}-worker{i}.log")
                self.logs.append(path)
                with open(path, "w") as log:
                    self.procs.append(subprocess.Popen(
                        cmd(i) if callable(cmd) else cmd, env=env, cwd=ROOT, stdout=log,
                        stderr=subprocess.STDOUT))
        except BaseException:
            self.stop()
            raise

    def output(self, i: int) -> str:
        with open(self.logs[i], errors="replace") as f:
            return f.read()

    def wait(self, timeout: float = TIMEOUT) -> list[int]:
        deadline = time.monotonic() + timeout
        codes = []
        for i, p in enumerate(self.procs):
            try:
                codes.append(p.wait(timeout=max(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                self.stop()
                pytest.fail(f"worker {i} did not finish within {timeout} s:\n"
                            + self.output(i)[-3000:])
        return codes

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass


def train_cmd(run_dir: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.train", *TRAIN_ARGS, "--strategy", "multiworker",
            "--run-dir", run_dir, *extra]


def read_weights(path: str) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def read_metrics(run_dir: str) -> list[dict[str, float]]:
    import csv

    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def max_weight_diff(a: str, b: str) -> float:
    wa, wb = read_weights(a), read_weights(b)
    assert set(wa) == set(wb) and wa
    return max(float(np.max(np.abs(wa[k] - wb[k]))) for k in wa)


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory):
    """The same run in this process with the default strategy (the reference)."""
    from pipelines.train import build_parser, config_from_args
    from tfface.train import run

    run_dir = str(tmp_path_factory.mktemp("mw") / "one-process")
    cfg = config_from_args(build_parser().parse_args(TRAIN_ARGS))
    assert run(cfg, run_dir, progress=False).status == "completed"
    return run_dir


def _all_files(folder: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), folder)
                  for d, _, fs in os.walk(folder) for f in fs)


def test_multiworker_two_workers_equal_one_process_and_write_once(one_process_run, tmp_path):
    run_dir, tmp_dir = str(tmp_path / "run"), str(tmp_path / "tmp")
    job = Job(train_cmd(run_dir), free_ports(2), str(tmp_path), tmp_dir, "train")
    try:
        codes = job.wait()
    finally:
        job.stop()
    assert codes == [0, 0], job.output(0)[-2000:] + job.output(1)[-2000:]
    assert f"Training completed at step {STEPS}/{STEPS}." in job.output(0)
    assert f"completed at step {STEPS}/{STEPS} (worker 1 of 2 workers" in job.output(1)

    diff = max_weight_diff(os.path.join(run_dir, "last.weights.h5"),
                           os.path.join(one_process_run, "last.weights.h5"))
    print(f"max |w_2workers - w_1process| = {diff:.3g}")
    assert diff < WEIGHT_TOL
    # Written once, by the chief: the run directory holds exactly what a one-process
    # run holds, and the other worker's scratch folders are gone.
    assert [f for f in _all_files(run_dir) if not f.startswith("logs")] == \
        [f for f in _all_files(one_process_run) if not f.startswith("logs")]
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == [
        "checkpoint", "ckpt-6.data-00000-of-00001", "ckpt-6.index",
        "ckpt-8.data-00000-of-00001", "ckpt-8.index"]
    # Logged metrics are the global-batch means of one process (not summed per worker).
    got, ref = read_metrics(run_dir), read_metrics(one_process_run)
    assert [sorted(r) for r in got] == [sorted(r) for r in ref] and len(got) == 2
    for a, b in zip(got, ref):
        for k in ("g_loss", "pixel", "val_psnr", "val_pixel"):
            assert abs(a[k] - b[k]) <= 1e-4 * max(1.0, abs(b[k])), (k, a[k], b[k])
    assert scratch_dirs(tmp_dir) == []


def scratch_dirs(tmp_dir: str) -> list[str]:
    """The scratch folders that non-chief workers left in their TMPDIR."""
    return sorted(e for e in os.listdir(tmp_dir) if e.startswith("tfface-"))


def _newest_step(run_dir: str) -> int | None:
    state = os.path.join(run_dir, "checkpoints", "checkpoint")
    if not os.path.exists(state):
        return None
    with open(state) as f:
        m = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', f.read(), re.M)
    return int(m.group(1)) if m else None


def test_multiworker_resumes_after_a_worker_is_killed(one_process_run, tmp_path):
    """SIGKILL worker 1 after the first checkpoint; the other worker stops by itself
    (its peer is gone) or is killed; the same command on the same ports resumes every
    worker from the newest checkpoint and ends where the uninterrupted run ends."""
    run_dir, tmp_dir = str(tmp_path / "run"), str(tmp_path / "tmp")
    ports = free_ports(2)
    job = Job(train_cmd(run_dir), ports, str(tmp_path), tmp_dir, "first")
    try:
        deadline = time.monotonic() + TIMEOUT
        while _newest_step(run_dir) is None:
            assert time.monotonic() < deadline, job.output(0)[-3000:]
            assert all(p.poll() is None for p in job.procs), job.output(0)[-3000:]
            time.sleep(0.02)
        job.procs[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        try:  # the chief notices that its peer is gone (a failed all-reduce)
            job.procs[0].wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        survivor = job.procs[0].poll()
        print(f"worker 0 after the kill: exit code {survivor} after "
              f"{time.monotonic() - killed:.1f} s" if survivor is not None
              else "worker 0 still waiting 60 s after the kill: killed too")
    finally:
        job.stop()
    if survivor is not None:  # it stopped by itself, saying what to do
        assert survivor == 1 and "another worker of the job is gone" in job.output(0), \
            job.output(0)[-2000:]
    killed_at = _newest_step(run_dir)
    assert killed_at is not None and killed_at < STEPS, job.output(0)[-2000:]

    left = scratch_dirs(tmp_dir)  # the killed worker could not remove its own
    job = Job(train_cmd(run_dir), ports, str(tmp_path), tmp_dir, "restart")
    try:
        codes = job.wait()
    finally:
        job.stop()
    assert codes == [0, 0], job.output(0)[-2000:] + job.output(1)[-2000:]
    for i in range(2):  # every worker restored the chief's newest checkpoint
        assert f"Resuming {run_dir} from step {killed_at}/{STEPS}." in job.output(i)
    print(f"killed after checkpoint {killed_at}; resumed at step {killed_at}")
    diff = max_weight_diff(os.path.join(run_dir, "last.weights.h5"),
                           os.path.join(one_process_run, "last.weights.h5"))
    print(f"max |w_resumed - w_uninterrupted 1 process| = {diff:.3g}")
    assert diff < WEIGHT_TOL
    assert scratch_dirs(tmp_dir) == left


def test_multiworker_data_service_and_sharded_folder(tmp_path):
    """Two workers fed by a tf.data service (a dispatcher and 2 workers started with
    ``pipelines.data_service``, on loopback): every element reaches exactly one worker; without the service each
    worker reads its own slice of each global batch of the folder; and training
    through the service with mixed precision completes on both workers."""
    import cv2

    from tfface.data.sources import render_synthetic_face

    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(20):
        img, _ = render_synthetic_face(3, i, 40, 0)
        cv2.imwrite(str(faces / f"f{i:02d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    probe_steps = 4
    outs = [str(tmp_path / f"probe{i}.json") for i in range(2)]
    run_dir = str(tmp_path / "run")
    probe = os.path.join(ROOT, "tests", "multiworker_probe.py")
    with data_service_processes(tmp_path) as target:
        args = TRAIN_ARGS + [
            "--data-dir", str(faces), "--data-service", target,
            "--strategy", "multiworker", "--mixed-precision", "--epochs", "1"]
        job = Job(lambda i: [sys.executable, probe, outs[i], run_dir, str(probe_steps), "--",
                             *args], free_ports(2), str(tmp_path), str(tmp_path / "tmp"), "probe")
        try:
            codes = job.wait()
            assert codes == [0, 0], job.output(0)[-2000:] + job.output(1)[-2000:]
        finally:
            job.stop()
    rec = [json.load(open(p)) for p in outs]
    half = BATCH // 2
    # Service: each worker gets per-worker batches of 2; together every element once.
    seen = [i for r in rec for b in r["service"] for i in b]
    assert all(len(b) == half for r in rec for b in r["service"])
    assert len(seen) == len(set(seen)) == probe_steps * BATCH
    # A prefix of the stream, up to what is in flight: each of the 2 service workers
    # synthesizes ahead of its consumers (seen: up to index 48 after 16 consumed).
    assert max(seen) < probe_steps * BATCH + 2 * 32
    # Local folder source: worker i reads slice i of every global batch, nothing else.
    for r in rec:
        t = r["task"]
        assert r["local"] == [[s * BATCH + t * half + j for j in range(half)]
                              for s in range(probe_steps)]
    assert [r["status"] for r in rec] == ["completed", "completed"]
    assert [r["step"] for r in rec] == [PER_EPOCH, PER_EPOCH]
    with open(os.path.join(run_dir, "config.json")) as f:
        assert json.load(f)["train"]["mixed_precision"] is True


# -- in-process: the flags and the cluster description ---------------------------------

def test_multiworker_refuses_xla_with_a_clear_message(tmp_path, monkeypatch, capsys):
    from pipelines import train as train_cli

    monkeypatch.setenv("TF_CONFIG", tf_config([12345, 12346], 0))
    code = train_cli.main([*TRAIN_ARGS, "--strategy", "multiworker", "--jit-compile",
                           "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["error: --jit-compile cannot be combined with --strategy multiworker: the "
                   "gradients are all-reduced across workers inside the train step, which "
                   "XLA cannot compile; drop --jit-compile (--mixed-precision does combine)"]
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


@pytest.mark.parametrize("raw, match", [
    ("{not json", "not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', "has no 'cluster'"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker"}}',
     r"job\(s\) \['ps'\]"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     "task worker:2 is not in the cluster"),
    ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}',
     "list of 'host:port'"),
])
def test_multiworker_bad_tf_config(raw, match):
    from tfface.train.distributed import worker_role

    with pytest.raises(ConfigError, match=match):
        worker_role("multiworker", {"TF_CONFIG": raw})


def test_multiworker_roles_from_tf_config():
    from tfface.train.distributed import WorkerRole, worker_role

    assert worker_role("multiworker", {}) == WorkerRole()  # no TF_CONFIG: one worker
    assert worker_role("default", {"TF_CONFIG": "{bad"}) == WorkerRole()  # not read
    w1 = worker_role("multiworker", {"TF_CONFIG": tf_config([1, 2, 3], 1)})
    assert (w1.num_workers, w1.task_id, w1.is_chief) == (3, 1, False)
    assert worker_role("multiworker", {"TF_CONFIG": tf_config([1, 2], 0)}).is_chief
    with_chief = ('{"cluster": {"chief": ["c:1"], "worker": ["a:1", "b:1"]}, '
                  '"task": {"type": "worker", "index": 0}}')
    r = worker_role("multiworker", {"TF_CONFIG": with_chief})
    assert (r.num_workers, r.is_chief) == (3, False)


def test_multiworker_shards_partition_each_global_batch():
    """make_dataset(shard=...) in-process: the workers' batches of step s are the slices
    of the one-process batch of step s, also when resuming at a step."""
    from pipelines.train import build_parser, config_from_args
    from tfface.data.pipeline import make_dataset

    cfg = config_from_args(build_parser().parse_args(TRAIN_ARGS))
    for start in (0, 3):
        one = [b["index"].numpy().tolist()
               for b in make_dataset(cfg, "train", start_step=start).take(3)]
        parts = [[b["index"].numpy().tolist() for b in make_dataset(
            cfg, "train", batch_size=BATCH // 2, start_step=start, shard=(2, i)).take(3)]
            for i in range(2)]
        assert [a + b for a, b in zip(*parts)] == one
        assert one[0][0] == start * BATCH
    with pytest.raises(ValueError, match="shard"):
        make_dataset(cfg, "train", shard=(2, 2))


def test_tpu_strategy_without_a_tpu_says_so():
    """The one TPU path tested here (docs/distributed.md): no TPU, a clear error."""
    from tfface.train.runner import make_strategy

    with pytest.raises(ConfigError, match="--strategy tpu: no TPU found"):
        make_strategy("tpu")
