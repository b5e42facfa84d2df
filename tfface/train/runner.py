"""``run(cfg, run_dir)``: one training run, resumable from any saved step.

A run directory holds everything needed to continue, evaluate or export a run; its
layout, and the functions that read it without this training engine, are in
:mod:`tfface.rundir`.

One process at a time trains in a run directory (an OS lock; a second one is refused
naming the first). Results are never silently replaced: a run directory with trained
weights but no checkpoint to continue from is refused instead of retrained from step
0, and ``--resume`` may change only :data:`RESUMABLE_KEYS` (learning rates, length,
bookkeeping), never the model or the data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from tfface import keras
from tfface.config import Config, ConfigError, apply_overrides, validate
from tfface.fileio import atomic_write, check_writable_dir
from tfface.identity.loss import make_identity_fn
from tfface.models import get_arch
from tfface.rundir import (
    CKPT_DIR, CONFIG_FILE, RESULT_FILES, generator_inputs, has_checkpoint, load_init_weights,
)
from tfface.runlock import DirLock
from tfface.train import callbacks as cbs
from tfface.train import distributed
from tfface.train.prior import init_face_prior
from tfface.train.regimes import trainer_for
from tfface.train.trainer import RestorationTrainer, learning_rate, make_optimizer

log = logging.getLogger("tfface.train")

RESUMABLE_KEYS = (
    # optimizer settings (applied after the optimizer state is restored)
    "train.g_lr", "train.d_lr", "train.beta_1", "train.lr_decay_steps", "train.lr_decay_rate",
    # length of the run
    "train.epochs", "train.steps_per_epoch", "train.max_minutes",
    # bookkeeping; the grid penalty's period (its weight would add a metrics.csv column)
    "train.save_every_steps", "train.sample_count", "train.grid_period",
)
"""Config keys a resumed run may change. Every other key (model shape, data, losses,
schedule kinds, precision, batch size, ...) belongs to the checkpoints and the data
position and is fixed once a run has started."""


@dataclass
class RunResult:
    """What a call to :func:`run` did."""

    run_dir: str
    step: int
    total_steps: int
    status: str
    """``completed``, ``time_limit``, ``nan`` or ``write_error`` (a checkpoint could not
    be written, e.g. a full disk)."""
    history: dict[str, list[float]] = field(default_factory=dict)
    best_val_psnr: float | None = None
    resumed_from: int = 0
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    """PSNR/SSIM of the classical baselines on the run's eval faces (see
    :func:`tfface.evaluation.baseline_scores`)."""
    verdict: str | None = None
    """One line: does the model's best validation PSNR beat every baseline?"""


_MULTIWORKER: tf.distribute.Strategy | None = None


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy named by ``train.strategy``.

    ``mirrored`` replicates over the local GPUs, or over the logical CPU devices when
    there is no GPU (a way to test the distributed step on a CPU-only machine).
    ``multiworker`` joins the cluster of ``TF_CONFIG`` (docs/distributed.md); it is made
    once per process and reused.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    if name == "multiworker":
        global _MULTIWORKER
        if _MULTIWORKER is None:  # a process joins its cluster once
            try:
                _MULTIWORKER = tf.distribute.MultiWorkerMirroredStrategy()
            except ValueError as e:  # e.g. TF_CONFIG names a host that does not resolve
                raise ConfigError(f"--strategy multiworker: {e} (docs/distributed.md)") from e
        return _MULTIWORKER
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError) as e:
            raise ConfigError(f"--strategy tpu: no TPU found ({e})") from e
        return tf.distribute.TPUStrategy(resolver)
    raise ConfigError(f"unknown strategy '{name}'")


class _precision:
    """Context: the ``mixed_float16`` Keras policy while models are built (then restored)."""

    def __init__(self, mixed: bool):
        self.mixed = mixed
        self.saved = None

    def __enter__(self):
        if self.mixed:
            self.saved = keras.mixed_precision.global_policy()
            keras.mixed_precision.set_global_policy("mixed_float16")

    def __exit__(self, *exc):
        if self.saved is not None:
            keras.mixed_precision.set_global_policy(self.saved)


def _lr(t, player: str, total_steps: int):
    return learning_rate(
        getattr(t, f"{player}_lr_schedule"), getattr(t, f"{player}_lr"),
        decay_steps=t.lr_decay_steps, decay_rate=t.lr_decay_rate, total_steps=total_steps,
    )


def build_trainer(
    cfg: Config,
    gen: keras.Model,
    disc: keras.Model | None,
    *,
    content_fn=None, identity_fn=None,
    total_steps: int | None = None,
    jit_compile: bool | None = None,
) -> RestorationTrainer:
    """The compiled trainer of ``cfg`` for ``gen``/``disc``: optimizers with the config's
    learning-rate schedules (and loss scaling under mixed precision), loss weights,
    content term. Optimizer slots are built now, so a checkpoint restore fills them and
    no variable is created inside a (re)traced step. Call inside the strategy scope."""
    t = cfg.train
    family = get_arch(cfg.model.arch)
    trainer_cls, options = trainer_for(family, cfg)
    inputs = generator_inputs(cfg)
    trainer = trainer_cls(
        gen, disc, input_keys=inputs, disc_keys=family.disc_keys(inputs, cfg),
        sr_scale=family.upscale(cfg), ema_decay=t.ema_decay, critic_shift=t.critic_shift,
        options=options)
    total = total_steps or (t.epochs * (t.steps_per_epoch or 1))
    g_opt = make_optimizer(_lr(t, "g", total), t.beta_1, t.mixed_precision)
    d_opt = (make_optimizer(_lr(t, "d", total), t.beta_1, t.mixed_precision)
             if disc is not None else None)
    trainer.compile(
        g_opt, d_opt, pixel_loss=t.pixel_loss, pixel_weight=t.pixel_weight,
        adv_weight=t.adv_weight, label_smoothing=t.label_smoothing,
        gan_loss=t.gan_loss or family.gan_loss, gp_weight=t.gp_weight,
        content_fn=content_fn, content_weight=t.content_weight, identity_fn=identity_fn,
        identity_weight=t.identity_weight if identity_fn else 0.0,
        grid_weight=t.grid_weight, grid_period=t.grid_period, mirror_weight=t.mirror_weight,
        spectral_weight=t.spectral_weight, spectral_patch=t.spectral_patch,
        jit_compile=bool(t.jit_compile if jit_compile is None else jit_compile),
        steps_per_execution=t.steps_per_execution)
    g_opt.build(gen.trainable_variables)
    if d_opt is not None:
        d_opt.build(disc.trainable_variables)
    return trainer


def make_content_fn(cfg: Config):
    """The content term of ``cfg`` as ``fn(target, pred) -> scalar``, or None when off."""
    from tfface import losses

    t = cfg.train
    if t.content_weight <= 0:
        return None
    if t.content_loss == "pixel":
        return losses.PIXEL_LOSSES[t.pixel_loss]
    if t.content_loss == "dlib_face":
        from tfface.identity import dlib_resnet, verify

        try:
            return dlib_resnet.perceptual_loss_fn(
                int(cfg.data.image_size), tuple(t.content_layers or dlib_resnet.PERCEPTUAL_LAYERS))
        except (verify.IdentityError, dlib_resnet.DlibResNetError) as e:
            raise ConfigError(f"train.content_loss dlib_face: {e}") from None
    extractor = losses.build_feature_extractor(
        t.content_loss, t.vgg_weights, backbone=t.content_extractor,
        feature_scale=t.content_feature_scale,
    )
    return lambda target, pred: losses.content_loss(extractor, target, pred)


def build_models(cfg: Config) -> tuple[keras.Model, keras.Model | None]:
    """Generator and (when the run is adversarial) discriminator of ``cfg``."""
    family = get_arch(cfg.model.arch)
    if family.task != cfg.data.task:
        raise ConfigError(
            f"arch '{cfg.model.arch}' is a {family.task} model, but data.task is '{cfg.data.task}'"
        )
    gen = family.build_generator(cfg)
    disc = None
    if cfg.train.adv_weight > 0:
        if family.build_discriminator is None:
            raise ConfigError(
                f"arch '{cfg.model.arch}' has no discriminator; use --adv-weight 0"
            )
        disc = family.build_discriminator(cfg)
    return gen, disc


def steps_per_epoch(cfg: Config, num_train: int | None) -> int:
    if cfg.train.steps_per_epoch:
        return int(cfg.train.steps_per_epoch)
    if not num_train:
        raise ConfigError(
            "the training source has no known size; set train.steps_per_epoch "
            "(--steps-per-epoch N)"
        )
    return max(1, num_train // cfg.train.batch_size)


def _activation_elements(model: keras.Model) -> int:
    total = 0
    for layer in model.layers:
        outs = layer.output if isinstance(layer.output, list) else [layer.output]
        total += sum(int(np.prod(o.shape[1:])) for o in outs)
    return total


def estimate_train_memory(gen: keras.Model, disc: keras.Model | None, batch: int) -> int:
    """Rough peak host memory (bytes) of one training step.

    Every layer output is kept for the backward pass (the discriminator runs on real
    and fake batches), plus a 30 % margin for gradient buffers, and weights with
    their gradients and two Adam slots. Calibrated on the paper V-Net (256 px, batch
    32): 763 MB of generator outputs per image, estimate 35 GB; the run was killed
    by the OOM killer at 24.3 GB on a 24 GB machine.
    """
    per_image = _activation_elements(gen) + (2 * _activation_elements(disc) if disc else 0)
    params = gen.count_params() + (disc.count_params() if disc else 0)
    return int(batch * per_image * 4 * 1.3 + params * 4 * 4 + 1e9)


def available_memory() -> int | None:
    """Bytes of host memory available to a new allocation (Linux), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(cfg: Config, gen: keras.Model, disc: keras.Model | None) -> None:
    """Refuse a CPU run that cannot fit in memory, saying what would fit."""
    if tf.config.list_physical_devices("GPU") or os.environ.get("TFFACE_SKIP_MEMORY_CHECK"):
        return
    avail = available_memory()
    need = estimate_train_memory(gen, disc, cfg.train.batch_size)
    if avail is None or need <= 0.9 * avail:
        return
    per_batch = max(1, estimate_train_memory(gen, disc, 1) - estimate_train_memory(gen, disc, 0))
    fits = int((0.9 * avail - estimate_train_memory(gen, disc, 0)) // per_batch)
    hint = (f"lower the batch size (--batch-size {fits} fits), " if fits >= 1 else "")
    raise ConfigError(
        f"training {cfg.model.arch}/{cfg.model.preset} at {cfg.data.image_size} px with batch "
        f"{cfg.train.batch_size} needs about {need / 1e9:.1f} GB of memory, but only "
        f"{avail / 1e9:.1f} GB is available on this machine (no GPU found). Run it on a GPU, "
        f"{hint}or use --preset demo. (Set TFFACE_SKIP_MEMORY_CHECK=1 to try anyway.)"
    )


CHECKPOINTS_KEPT = 2


def estimate_run_disk(gen: keras.Model, disc: keras.Model | None, ema: bool = False) -> int:
    """Bytes a run directory needs: the kept checkpoints plus the one being written
    (weights and two Adam slots of both models, the EMA copy), best/last weights,
    and 20 MB for logs, samples and metrics."""
    g, d = gen.count_params(), (disc.count_params() if disc is not None else 0)
    ckpt = 4 * (3 * g + 3 * d + (g if ema else 0))
    return int((CHECKPOINTS_KEPT + 1) * ckpt + 2 * 4 * g + 20e6)


def check_run_dir(run_dir: str, need_bytes: int = 0) -> None:
    """Fail before training when ``run_dir`` cannot be written or lacks the space a run
    needs (a write probe plus a free-space estimate), with what to do about it."""
    check_writable_dir(
        run_dir, need_bytes, what="run directory",
        hint="Choose another --run-dir (or free some space) and start again.")


class _OpDeterminism:
    """Context: TensorFlow op determinism on (when asked), then back to how it was.

    The switch is process-wide; a run must not leave it on for the caller.
    """

    def __init__(self, on: bool):
        self.on = on
        self.was = None

    def __enter__(self):
        from tensorflow.python.framework import config as tf_config

        self.was = tf_config.is_op_determinism_enabled()
        if self.on and not self.was:
            tf.config.experimental.enable_op_determinism()
        return self

    def __exit__(self, *exc):
        from tensorflow.python.framework import config as tf_config

        if self.on and not self.was and hasattr(tf_config, "disable_op_determinism"):
            tf_config.disable_op_determinism()


def restore_newest_good(ckpt: tf.train.Checkpoint, manager: tf.train.CheckpointManager,
                        run_dir: str, variables=None) -> str | None:
    """Restore the newest checkpoint that reads back completely; None when there is none.

    TensorFlow writes checkpoints to temporary names and renames them, so a killed
    process leaves no half-written checkpoint; a file damaged afterwards (a disk
    error, a copy cut short) is skipped with a warning and the previous one is used.
    With ``variables``, a checkpoint that gives any of them a NaN/Inf value (written
    by an older version, which did not verify them) is skipped the same way.
    """
    paths = list(reversed(manager.checkpoints))
    errors = []
    for path in paths:
        try:
            ckpt.restore(path).assert_existing_objects_matched()
            bad = cbs.nonfinite_variables(variables or [])
            if bad:
                raise ValueError(f"non-finite values in {', '.join(bad[:3])}")
        except Exception as e:  # noqa: BLE001 - OpError, ValueError, IndexError, ...
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            log.warning("checkpoint %s cannot be read (%s); trying an older one", path, msg)
            print(f"warning: checkpoint {os.path.basename(path)} cannot be read ({msg}); "
                  "trying an older one", file=sys.stderr)
            errors.append(f"{os.path.basename(path)}: {msg}")
            continue
        return path
    if paths:
        raise ConfigError(
            f"none of the checkpoints in {os.path.join(run_dir, CKPT_DIR)} can be read "
            f"({'; '.join(errors)}); start the run over in a new --run-dir")
    return None


def _progress_bar(total: int, initial: int):
    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    return tqdm(
        total=total, initial=initial, unit="step", dynamic_ncols=True,
        mininterval=0.5 if tty else 30.0, desc="training",
    )


def run(
    cfg: Config,
    run_dir: str,
    *,
    resume: bool = True,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
    progress: bool = True,
) -> RunResult:
    """Train ``cfg`` in ``run_dir``; continue from its newest checkpoint when ``resume``.

    The training stream is deterministic in the step: a run resumed at step ``s``
    draws exactly the batches an uninterrupted run draws from step ``s`` on.

    Raises:
        OutputDirError: ``run_dir`` cannot be written or lacks the space the run needs
            (checked before the data is read and again, with the model's size, before
            the first step).
        ConfigError: invalid config, ``run_dir`` holds a different run (only
            :data:`RESUMABLE_KEYS` may differ on resume), or trained results without a
            checkpoint to continue from (see :func:`refuse_to_replace_results`).
        DirBusyError: another process trains in ``run_dir`` (nothing is changed).
    """
    validate(cfg)
    role = distributed.worker_role(cfg.train.strategy)
    distributed.check_flags(cfg, role)
    check_run_dir(run_dir)  # read-only, someone else's folder, a full disk: fail now
    # One training process per run directory; a second one is refused here, before it
    # reads or writes anything of the run.
    # Only the chief of a multi-worker job takes it: the other workers never write the
    # run directory, and a worker waiting on a lock would hang the whole job.
    lock = (DirLock(run_dir, "train", hint="or choose another --run-dir") if role.is_chief
            else contextlib.nullcontext())
    with lock:
        cfg_path = os.path.join(run_dir, CONFIG_FILE)
        checkpointed = has_checkpoint(run_dir)
        if resume and checkpointed and os.path.exists(cfg_path):
            saved = Config.load(cfg_path)
            changes = config_changes(saved, cfg)
            fixed = [k for k in changes if k not in RESUMABLE_KEYS]
            if fixed:
                raise ConfigError(
                    f"{run_dir} holds a run with a different configuration ("
                    + "; ".join(_change_text(k, changes[k]) for k in fixed[:3])
                    + f"); resume it with its own config (python -m pipelines.train --resume "
                    f"{run_dir}) or choose another --run-dir")
            if changes:
                print(f"Resuming with changed settings: "
                      + "; ".join(_change_text(k, v) for k, v in changes.items()) + ".")
        else:
            refuse_to_replace_results(run_dir, checkpointed)
        if role.is_chief:  # the other workers of a multi-worker run never write the run dir
            cfg.save(cfg_path)
        scratch = distributed.scratch_dir(role)
        try:
            with _OpDeterminism(cfg.train.deterministic):
                return _run(cfg, run_dir, resume, extra_callbacks, progress, role, scratch)
        finally:
            distributed.remove_scratch(scratch)


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}."))
    if not d and prefix:
        out[prefix.rstrip(".")] = d
    return out


def config_changes(old: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old, new)}`` of the values that differ between two configs."""
    a, b = _flat(old.to_dict()), _flat(new.to_dict())
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _change_text(key: str, change: tuple[Any, Any]) -> str:
    return f"{key} {change[0]!r} -> {change[1]!r}"


def resume_config(run_dir: str, *overrides: dict) -> Config:
    """The saved config of ``run_dir`` with ``overrides`` (nested dicts, as from
    ``--set``) applied; only :data:`RESUMABLE_KEYS` may change.

    Raises:
        ConfigError: no config.json, an unknown key or bad value, or a change of a key
            that is fixed once the run started (the message lists those that may change).
    """
    cfg_path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(cfg_path):
        raise ConfigError(f"--resume: {run_dir} is not a run directory (no {CONFIG_FILE})")
    saved = Config.load(cfg_path)
    cfg = Config.load(cfg_path)
    for over in overrides:
        if over:
            apply_overrides(cfg, over)
    fixed = [k for k in config_changes(saved, cfg) if k not in RESUMABLE_KEYS]
    if fixed:
        raise ConfigError(
            f"{fixed[0]} cannot change when resuming {run_dir}: the checkpoints and the data "
            f"position were made with its saved value. Settings that may change on resume: "
            f"{', '.join(RESUMABLE_KEYS)}. To change {fixed[0]}, start a new run "
            "(another --run-dir).")
    validate(cfg)
    return cfg


def refuse_to_replace_results(run_dir: str, checkpointed: bool) -> None:
    """Refuse to train from step 0 over the trained weights of an earlier run.

    Called when ``run_dir`` will not be resumed (no checkpoint to continue from, or
    ``resume=False``); a folder with only a config, logs or an empty metrics file (a
    run stopped before its first checkpoint) is fine to start over in.
    """
    found = []
    for name in RESULT_FILES:
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path):
            continue
        if name == "metrics.csv":
            with open(path, "rb") as f:
                if sum(1 for line in f if line.strip()) < 2:  # no row below the header
                    continue
        found.append(name)
    if checkpointed:
        found.append(f"{CKPT_DIR}/")
    if not found:
        return
    what = ""
    try:
        with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as f:
            s = json.load(f)
        what = f"; summary.json: {s['status']} at step {s['step']}/{s['total_steps']}"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    why = ("it would start from step 0" if checkpointed else
           f"it has no checkpoint to continue from ({CKPT_DIR}/ is missing or empty), so "
           "training would start from step 0")
    raise ConfigError(
        f"{run_dir} holds the results of an earlier run ({', '.join(found)}{what}); {why} "
        "and overwrite them. Nothing was changed. To train from scratch, choose a new "
        f"--run-dir; to continue this run, put its {CKPT_DIR}/ folder back and use --resume.")


@dataclass
class _Session:
    """What the parts of one training run share (see :func:`_run`)."""

    cfg: Config
    run_dir: str
    out_dir: str
    """Where this process writes: ``run_dir``, or a non-chief worker's scratch folder."""
    role: Any
    strategy: tf.distribute.Strategy
    source: Any
    spe: int
    total: int
    trainer: RestorationTrainer | None = None
    best: tf.Variable | None = None
    manager: tf.train.CheckpointManager | None = None
    writer: Any = None
    checked: list = field(default_factory=list)
    resuming: bool = False
    """A checkpoint will be restored (so ``train.init_weights`` is not read)."""


class _Watched(NamedTuple):
    """The callbacks whose state says how a run ended."""

    guard: cbs.NaNGuard
    limit: cbs.TimeLimit
    saver: cbs.CheckpointSaver
    divergence: cbs.DivergenceWarning
    bar: Any


def _run(cfg, run_dir, resume, extra_callbacks, progress, role, scratch) -> RunResult:
    from tfface.data.sources import make_source

    # Weight initialization follows the config's seed, so a run is reproducible.
    keras.utils.set_random_seed(cfg.data.seed)
    # A non-chief worker writes what the chief writes into its scratch folder instead.
    out_dir = scratch or run_dir
    source = make_source(cfg.data, log_dir=out_dir)
    spe = steps_per_epoch(cfg, source.num_examples("train"))
    s = _Session(cfg, run_dir, out_dir, role, make_strategy(cfg.train.strategy), source, spe,
                 spe * cfg.train.epochs, resuming=resume and has_checkpoint(run_dir))
    _build_for_run(s)
    ckpt = _checkpointing(s, scratch)
    start = 0
    if resume and s.manager.latest_checkpoint and restore_newest_good(ckpt, s.manager, run_dir,
                                                                      s.checked):
        start = _resumed_step(s)
    distributed.check_same(s.strategy, role, start, "step to resume from")
    if start >= s.total:
        print(f"{run_dir} already finished ({start}/{s.total} steps).")
        return RunResult(run_dir, start, s.total, "completed",
                         best_val_psnr=float(s.best.numpy()), resumed_from=start)
    eval_ds, sample, baselines = _eval_data(s)
    callbacks, watch = _callbacks(s, start, sample, baselines, progress, extra_callbacks)
    try:
        history, step = _fit(s, start, eval_ds, callbacks)
    finally:
        if watch.bar is not None:
            watch.bar.close()
    return _finish(s, start, step, history, baselines, watch)


def _build_for_run(s: _Session) -> None:
    """Content term, models and compiled trainer of the run (in the strategy's scope),
    after the memory and disk checks."""
    t = s.cfg.train
    with s.strategy.scope():
        content_fn = make_content_fn(s.cfg)  # fails early (clear message) without VGG weights
    with s.strategy.scope(), _precision(t.mixed_precision):
        gen, disc = build_models(s.cfg)
        if t.init_weights and not s.resuming:  # before the trainer copies it into the EMA
            path = load_init_weights(gen, s.cfg, fit_source=s.source)
            print(f"Starting the generator from {path}.")
        if not s.resuming:
            init_face_prior(gen, s.cfg, s.source)
        check_memory(s.cfg, gen, disc)
        check_run_dir(s.out_dir, estimate_run_disk(gen, disc, t.ema_decay > 0))
        identity_fn = make_identity_fn(s.cfg)
        s.trainer = build_trainer(s.cfg, gen, disc, content_fn=content_fn,
                                  identity_fn=identity_fn, total_steps=s.total)


def _checkpointing(s: _Session, scratch) -> tf.train.Checkpoint:
    """The run's checkpoint (models, optimizers, EMA copy, best score) and its writer."""
    trainer = s.trainer
    s.best = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name="best_val_psnr")
    state = {"generator": trainer.generator, "g_optimizer": trainer.g_optimizer,
             "best_val_psnr": s.best}
    if trainer.discriminator is not None:
        state.update(discriminator=trainer.discriminator, d_optimizer=trainer.d_optimizer)
    if trainer.ema_generator is not None:
        state["ema_generator"] = trainer.ema_generator
    ckpt = tf.train.Checkpoint(**state)
    s.manager = tf.train.CheckpointManager(ckpt, os.path.join(s.run_dir, CKPT_DIR),
                                           max_to_keep=2)
    # Everything a checkpoint holds that must be finite for it to count as good:
    # weights, batch-norm moving statistics, EMA copy and optimizer slots.
    s.checked = [v for k, obj in state.items() if k != "best_val_psnr" for v in obj.variables]
    s.writer = s.manager if s.role.is_chief else distributed.ScratchCheckpoints(ckpt, scratch)
    return ckpt


def _resumed_step(s: _Session) -> int:
    """The step a restored run continues from; resets the learning rates to the config's."""
    start = int(s.trainer.g_optimizer.iterations.numpy())
    log.info("resuming %s from step %d/%d", s.run_dir, start, s.total)
    print(f"Resuming {s.run_dir} from step {start}/{s.total}.")
    # The checkpoint restored the learning rates it was saved with; the config's
    # (possibly lowered on resume) are the ones to train with.
    for player, opt in (("g", s.trainer.g_optimizer), ("d", s.trainer.d_optimizer)):
        lr = _lr(s.cfg.train, player, s.total)
        if opt is not None and isinstance(lr, float):
            opt.learning_rate = lr
    return start


def _eval_data(s: _Session):
    """The eval batches, one sample batch for the grids, and the classical baselines'
    scores on the same eval faces (once per run: they do not change)."""
    from tfface.data.pipeline import make_dataset
    from tfface.evaluation import baseline_scores

    t = s.cfg.train
    eval_ds = make_dataset(s.cfg, "eval", source=s.source)
    if t.eval_batches:
        eval_ds = eval_ds.take(t.eval_batches)
    # The grids show the first faces of the eval stream. Its order and content are fixed
    # (element i does not depend on the batch size), so they are cut from the batches the
    # baselines read, one pass that keeps no more than the grid's faces, instead of
    # building and tracing a second pipeline for them.
    head: list[dict[str, np.ndarray]] = []

    def batches():
        kept = 0
        for b in eval_ds:
            b = {k: v.numpy() for k, v in b.items()}
            if kept < t.sample_count:
                head.append({k: v[:t.sample_count - kept] for k, v in b.items()})
                kept += len(head[-1]["clean"])
            yield b

    baselines = baseline_scores(batches())
    sample = {k: np.concatenate([b[k] for b in head]) for k in head[0]}
    if len(sample["clean"]) < t.sample_count and t.eval_batches:
        # eval_batches cut the stream shorter than the grid: the grid reads on past it
        sample_ds = make_dataset(s.cfg, "eval", batch_size=t.sample_count, source=s.source)
        sample = {k: v.numpy() for k, v in next(iter(sample_ds.take(1))).items()}
    return eval_ds, sample, baselines


def _callbacks(s: _Session, start, sample, baselines, progress, extra_callbacks):
    """The run's callbacks, and the ones :func:`_finish` reads."""
    t, role, out_dir = s.cfg.train, s.role, s.out_dir

    def agree(flag: bool) -> bool:  # a stop decision every worker takes at the same step
        return distributed.any_worker(s.strategy, role, flag)

    guard = cbs.NaNGuard()
    limit = cbs.TimeLimit(t.max_minutes, agree=agree if role.distributed else None)
    bar = _progress_bar(s.total, start) if progress and role.is_chief else None
    saver = cbs.CheckpointSaver(s.writer, t.save_every_steps, guard, s.checked,
                                agree=agree if role.distributed else None)
    divergence = cbs.DivergenceWarning(s.best)
    callbacks: list[keras.callbacks.Callback] = [
        cbs.Baselines(baselines),  # first: the callbacks below read its keys from the logs
        guard,
        limit,
        saver,
        divergence,
        cbs.BestWeights(out_dir, s.best, guard),
        cbs.SampleGrid(sample, generator_inputs(s.cfg), os.path.join(out_dir, "samples")),
        cbs.CpuTime(cbs.CpuTime.last_logged(os.path.join(out_dir, "metrics.csv"))),
        keras.callbacks.CSVLogger(os.path.join(out_dir, "metrics.csv"), append=True),
        keras.callbacks.TensorBoard(
            os.path.join(out_dir, "logs"), update_freq=max(1, min(100, s.spe)),
            write_graph=False, profile_batch=0,
        ),
    ]
    if t.pretrain_steps:
        s.trainer.set_pretraining(start < t.pretrain_steps)
        callbacks.insert(0, cbs.PretrainPhase(t.pretrain_steps))
    if bar is not None:
        callbacks.append(cbs.Progress(bar, baselines=tuple(baselines)))
    callbacks += list(extra_callbacks or [])
    return callbacks, _Watched(guard, limit, saver, divergence, bar)


def _fit(s: _Session, start: int, eval_ds, callbacks) -> tuple[dict[str, list[float]], int]:
    """Train from ``start`` to the end of the run (or a stop); the history and last step."""
    from tfface.data.pipeline import make_dataset

    cfg, role, spe, trainer = s.cfg, s.role, s.spe, s.trainer
    history: dict[str, list[float]] = {}
    epoch0, offset = divmod(start, spe)
    # A run interrupted mid-epoch first finishes that epoch's remaining steps, then
    # continues with whole epochs, so the step count matches an uninterrupted run.
    phases = []
    if offset:
        phases.append((epoch0, epoch0 + 1, spe - offset))
        epoch0 += 1
    if epoch0 < cfg.train.epochs:
        phases.append((epoch0, cfg.train.epochs, spe))
    step = start
    job = None
    if role.distributed and cfg.data.data_service:
        # One tf.data service job per launch of the cluster, shared by its workers.
        nonce = distributed.broadcast_from_chief(
            s.strategy, role, int(np.random.default_rng().integers(1 << 23)))
        job = f"tfface-{nonce}"
    for first, last, n_steps in phases:
        if role.distributed:
            train_ds = distributed.train_dataset(
                cfg, s.strategy, role, start_step=step, source=s.source,
                service_job=job and f"{job}-{step}")
        else:
            train_ds = make_dataset(cfg, "train", start_step=step, source=s.source)
        h = trainer.fit(
            train_ds, epochs=last, initial_epoch=first, steps_per_epoch=n_steps,
            validation_data=eval_ds, callbacks=callbacks, verbose=0,
        )
        for k, v in h.history.items():
            history.setdefault(k, []).extend(float(x) for x in v)
        step = int(trainer.g_optimizer.iterations.numpy())
        if trainer.stop_training:
            break
    return history, step


def _finish(s: _Session, start, step, history, baselines, watch: _Watched) -> RunResult:
    """How the run ended (printed, with what to do next), its summary.json, its result."""
    from tfface.evaluation import baseline_verdict

    t, run_dir, manager, total = s.cfg.train, s.run_dir, s.manager, s.total
    saver, guard = watch.saver, watch.guard
    status = "completed"
    if saver.error is not None:
        status = "write_error"
        latest = manager.latest_checkpoint or "none"
        print(f"Training stopped: {saver.error}. The last complete checkpoint is kept "
              f"({latest}); free some space and resume with --resume {run_dir}.",
              file=sys.stderr)
    elif guard.failed_at is not None:
        status = "nan"
        latest = manager.latest_checkpoint or "none"
        lower = f"--set train.g_lr={t.g_lr / 10:g}" + (
            f" --set train.d_lr={t.d_lr / 10:g}" if s.trainer.discriminator is not None else "")
        if manager.latest_checkpoint:
            advice = (f"The last good checkpoint is kept ({latest}); resume from it with lower "
                      f"learning rates: python -m pipelines.train --resume {run_dir} {lower}")
        else:
            advice = ("No checkpoint was written before it; start again with lower learning "
                      f"rates: python -m pipelines.train --resume {run_dir} {lower}")
        print(f"Training stopped: {guard.reason} at step {guard.failed_at}. {advice}",
              file=sys.stderr)
    elif watch.limit.hit:
        status = "time_limit"
        print(f"Stopped after the time limit at step {step}/{total}; resume with "
              f"--resume {run_dir}.")
    best_val = float(s.best.numpy())
    best_val = best_val if math.isfinite(best_val) else None
    psnrs, ssims = history.get("val_psnr", []), history.get("val_ssim", [])
    best_ssim = (ssims[int(np.argmax(psnrs))] if psnrs and len(ssims) == len(psnrs)
                 and best_val is not None and np.isclose(max(psnrs), best_val) else None)
    beats, verdict = baseline_verdict(best_val, best_ssim, baselines)
    summary: dict[str, Any] = {
        "status": status, "step": step, "total_steps": total, "resumed_from": start,
        "best_val_psnr": best_val, "best_val_ssim": best_ssim,
        "baselines": baselines, "beats_baselines": beats, "verdict": verdict,
        "final": {k: v[-1] for k, v in history.items() if v},
    }
    if watch.divergence.warnings:
        summary["warnings"] = watch.divergence.warnings
    try:
        atomic_write(os.path.join(s.out_dir, "summary.json"), json.dumps(summary, indent=2))
    except OSError as e:  # a full disk must not turn a clean stop into a traceback
        print(f"warning: could not write summary.json ({e})", file=sys.stderr)
    return RunResult(run_dir, step, total, status, history,
                     summary["best_val_psnr"], resumed_from=start, baselines=baselines,
                     verdict=verdict)
