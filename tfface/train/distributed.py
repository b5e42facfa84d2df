"""Multi-worker training (``--strategy multiworker``): roles, data shards, agreement.

TensorFlow's own engine does the work: ``tf.distribute.MultiWorkerMirroredStrategy``
reads the cluster from the ``TF_CONFIG`` environment variable (the same JSON on every
worker except ``task.index``), keeps one copy of every variable per worker and
all-reduces the gradients each step. This module adds what a tfface run needs on top
(see docs/distributed.md):

* **Roles** (:func:`worker_role`): the *chief* (task ``chief``, or ``worker`` 0 when
  the cluster has no ``chief``) writes the run directory: config.json, checkpoints,
  weights, metrics, logs, samples, summary.json. Every other worker writes the same
  files into a temporary folder of its own that is removed when it ends (TensorFlow's
  multi-worker checkpoint recipe: all workers take part in saving, one copy is kept),
  and reads checkpoints from the chief's run directory, which must therefore be on
  storage all workers share.
* **Data** (:func:`train_dataset`): ``batch_size`` stays the global batch. Worker
  ``i`` of ``N`` reads only its slice of each global batch (elements are dropped by
  index before they are read), so one step of ``N`` workers sees exactly the faces
  of one step of a single process; with the tf.data service the workers share one
  service job, which hands each element to one of them.
* **Agreement** (:func:`any_worker`, :func:`check_same`): decisions taken from local
  facts (the time limit, a failed checkpoint write, the restored step) are all-reduced,
  so every worker stops at the same step instead of waiting forever for the others.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass

import tensorflow as tf

from tfface.config import ConfigError

WORKER_JOBS = ("chief", "worker")
"""Cluster jobs that train; a ``ps`` (parameter server) or ``evaluator`` job is refused."""


@dataclass(frozen=True)
class WorkerRole:
    """This process's place in the cluster (one worker, the chief, when not distributed)."""

    num_workers: int = 1
    task_type: str = "worker"
    task_id: int = 0
    is_chief: bool = True

    @property
    def distributed(self) -> bool:
        return self.num_workers > 1

    def describe(self) -> str:
        if not self.distributed:
            return "single worker"
        return (f"{self.task_type} {self.task_id} of {self.num_workers} workers"
                + (" (chief)" if self.is_chief else ""))


def parse_tf_config(raw: str) -> WorkerRole:
    """The role that a ``TF_CONFIG`` value gives this process.

    Raises:
        ConfigError: not JSON, no ``cluster``/``task``, a job tfface cannot train with,
            or a task that is not in the cluster; the message shows the expected form.
    """
    example = ('expected e.g. {"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
               '"task": {"type": "worker", "index": 0}} (docs/distributed.md)')
    try:
        spec = json.loads(raw)
    except ValueError as e:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({e}); {example}") from e
    if not isinstance(spec, dict) or not isinstance(spec.get("cluster"), dict):
        raise ConfigError(f"TF_CONFIG has no 'cluster'; {example}")
    cluster, task = spec["cluster"], spec.get("task")
    if not isinstance(task, dict) or "type" not in task:
        raise ConfigError(f"TF_CONFIG has no 'task' with a 'type'; {example}")
    other = sorted(set(cluster) - set(WORKER_JOBS))
    if other:
        raise ConfigError(
            f"TF_CONFIG has job(s) {other}: --strategy multiworker trains with 'chief' and "
            f"'worker' tasks only (no parameter servers or evaluators); {example}")
    for job, hosts in cluster.items():
        if not isinstance(hosts, list) or not all(isinstance(h, str) and ":" in h for h in hosts):
            raise ConfigError(f"TF_CONFIG cluster '{job}' must be a list of 'host:port' "
                              f"strings, got {hosts!r}")
    if len(cluster.get("chief", [])) > 1:
        raise ConfigError("TF_CONFIG may name at most one 'chief'")
    task_type = task["type"]
    try:
        task_id = int(task.get("index", 0))
    except (TypeError, ValueError):
        raise ConfigError(f"TF_CONFIG task index must be an integer, got {task.get('index')!r}")
    if task_type not in cluster or not 0 <= task_id < len(cluster[task_type]):
        raise ConfigError(
            f"TF_CONFIG task {task_type}:{task.get('index')} is not in the cluster "
            f"({ {k: len(v) for k, v in cluster.items()} }); {example}")
    num = sum(len(cluster.get(j, [])) for j in WORKER_JOBS)
    chief = task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in cluster)
    return WorkerRole(num, task_type, task_id, chief)


def worker_role(strategy: str, environ=None) -> WorkerRole:
    """This process's role for ``train.strategy`` (read from ``TF_CONFIG``, no TF calls).

    Any strategy but ``multiworker`` (and ``multiworker`` without ``TF_CONFIG``) is
    one worker, the chief.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG", "").strip()
    if strategy != "multiworker" or not raw:
        return WorkerRole()
    return parse_tf_config(raw)


def check_flags(cfg, role: WorkerRole) -> None:
    """Refuse flag combinations that cannot run on several workers, saying why.

    XLA (``--jit-compile``) compiles the whole train step, but on this path the
    gradients are all-reduced across workers inside the step by the optimizer
    (a ``merge_call`` into the strategy), which a step compiled as one XLA function
    cannot contain: TensorFlow fails there. Mixed precision combines (each
    worker's loss scale moves with the all-reduced gradients, so it stays in step).
    """
    if role.distributed and cfg.train.jit_compile:
        raise ConfigError(
            "--jit-compile cannot be combined with --strategy multiworker: the gradients "
            "are all-reduced across workers inside the train step, which XLA cannot "
            "compile; drop --jit-compile (--mixed-precision does combine)")


def scratch_dir(role: WorkerRole) -> str | None:
    """A fresh local folder for a non-chief worker's files (None for the chief)."""
    if role.is_chief:
        return None
    return tempfile.mkdtemp(prefix=f"tfface-{role.task_type}{role.task_id}-")


def remove_scratch(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


class ScratchCheckpoints:
    """What a non-chief worker saves checkpoints with: it takes part in each save (as
    TensorFlow's recipe asks) into its scratch folder and deletes the files at once."""

    def __init__(self, checkpoint: tf.train.Checkpoint, scratch: str):
        self.dir = os.path.join(scratch, "checkpoints")
        self.manager = tf.train.CheckpointManager(checkpoint, self.dir, max_to_keep=1)

    def save(self, checkpoint_number: int | None = None) -> str:
        try:
            return self.manager.save(checkpoint_number=checkpoint_number)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def latest_checkpoint(self):  # the chief's folder holds the real ones
        return None


def _all_reduce(strategy: tf.distribute.Strategy, value: float) -> float:
    """The sum of ``value`` over the workers (float64: integers are exact below 2**53)."""
    per_replica = strategy.run(lambda: tf.constant(float(value), tf.float64))
    return float(strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy())


def any_worker(strategy: tf.distribute.Strategy, role: WorkerRole, flag: bool) -> bool:
    """True on every worker when ``flag`` is true on any of them (a collective: all
    workers must call it at the same point)."""
    if not role.distributed:
        return bool(flag)
    return _all_reduce(strategy, 1.0 if flag else 0.0) > 0


def broadcast_from_chief(strategy: tf.distribute.Strategy, role: WorkerRole, value: int) -> int:
    """The chief's ``value`` on every worker (a collective)."""
    if not role.distributed:
        return int(value)
    return int(_all_reduce(strategy, float(value) if role.is_chief else 0.0))


def check_same(strategy: tf.distribute.Strategy, role: WorkerRole, value: int, what: str) -> None:
    """Fail on every worker when a worker's ``value`` differs from the chief's (e.g. the
    restored step, when a worker cannot see the chief's checkpoints)."""
    if not role.distributed:
        return
    chief = broadcast_from_chief(strategy, role, value)
    if any_worker(strategy, role, int(value) != chief):
        raise ConfigError(
            f"the workers disagree on the {what} (the chief: {chief}, this worker: {value}); "
            "every worker must see the chief's run directory on shared storage "
            "(docs/distributed.md)")


def train_dataset(cfg, strategy: tf.distribute.Strategy, role: WorkerRole, *, start_step: int,
                  source, service_job: str | None = None):
    """The training input of a multi-worker run: per worker its slice of each global
    batch (:func:`tfface.data.pipeline.make_dataset` with ``shard``), handed to Keras
    as one distributed dataset (no re-batching or auto-sharding on top)."""
    from tfface.data.pipeline import make_dataset

    def per_worker(ctx: tf.distribute.InputContext):
        per_replica = ctx.get_per_replica_batch_size(cfg.train.batch_size)
        local = ctx.num_replicas_in_sync // ctx.num_input_pipelines  # GPUs of a worker
        ds = make_dataset(cfg, "train", batch_size=per_replica * local,
                          start_step=start_step, source=source,
                          shard=(ctx.num_input_pipelines, ctx.input_pipeline_id),
                          service_job=service_job)
        # The strategy hands consecutive elements to the worker's local replicas.
        return ds.rebatch(per_replica) if local > 1 else ds

    if cfg.train.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(
            f"--batch-size {cfg.train.batch_size} (the global batch) must be a multiple of "
            f"the {strategy.num_replicas_in_sync} replicas of the {role.describe()} run")
    return strategy.distribute_datasets_from_function(per_worker)
