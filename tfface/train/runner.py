"""``run(cfg, run_dir)``: one training run, resumable from any saved step.

A run directory holds everything needed to continue, evaluate or export a run::

    config.json          the resolved configuration (export rebuilds the model from it)
    checkpoints/         resumable state: models, optimizers, step, best score
    best.weights.h5      generator weights with the best validation PSNR
    last.weights.h5      generator weights at the end of the latest epoch
    metrics.csv          one row of train/validation metrics per epoch
    logs/                TensorBoard event files
    samples/             epoch_NNNN.png grids: input | output | target | mask
    summary.json         how the run ended and its final metrics
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from tfface import keras
from tfface.config import Config, ConfigError, validate
from tfface.models import get_arch
from tfface.train import callbacks as cbs
from tfface.train.regimes import trainer_for
from tfface.train.trainer import RestorationTrainer, learning_rate, make_optimizer

log = logging.getLogger("tfface.train")

CONFIG_FILE = "config.json"
CKPT_DIR = "checkpoints"


@dataclass
class RunResult:
    """What a call to :func:`run` did."""

    run_dir: str
    step: int
    total_steps: int
    status: str
    """``completed``, ``time_limit`` or ``nan``."""
    history: dict[str, list[float]] = field(default_factory=dict)
    best_val_psnr: float | None = None
    resumed_from: int = 0


def generator_inputs(cfg: Config) -> tuple[str, ...]:
    """Dataset keys the generator of ``cfg`` reads, in its input order."""
    if cfg.data.task == "sr":
        return ("lr",)
    if cfg.model.params.get("mask_input"):
        return ("occluded", "mask")
    return ("occluded",)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy named by ``train.strategy``.

    ``mirrored`` replicates over the local GPUs, or over the logical CPU devices when
    there is no GPU (a way to test the distributed step on a CPU-only machine).
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
        return tf.distribute.MultiWorkerMirroredStrategy()
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
    content_fn=None,
    total_steps: int | None = None,
    jit_compile: bool | None = None,
) -> RestorationTrainer:
    """The compiled trainer of ``cfg`` for ``gen``/``disc``: optimizers with the config's
    learning-rate schedules (and loss scaling under mixed precision), loss weights,
    content term. Optimizer slots are built now, so a checkpoint restore fills them and
    no variable is created inside a (re)traced step. Call inside the strategy scope."""
    t = cfg.train
    family = get_arch(cfg.model.arch)
    trainer_cls, regime_options = trainer_for(family, cfg)
    trainer = trainer_cls(
        gen, disc, input_keys=generator_inputs(cfg),
        conditional=getattr(family, "CONDITIONAL_D", False),
        sr_scale=cfg.data.scale if cfg.data.task == "sr" else None,
        ema_decay=t.ema_decay, **regime_options,
    )
    total = total_steps or (t.epochs * (t.steps_per_epoch or 1))
    g_opt = make_optimizer(_lr(t, "g", total), t.beta_1, t.mixed_precision)
    d_opt = (make_optimizer(_lr(t, "d", total), t.beta_1, t.mixed_precision)
             if disc is not None else None)
    trainer.compile(
        g_opt, d_opt, pixel_loss=t.pixel_loss, pixel_weight=t.pixel_weight,
        adv_weight=t.adv_weight, label_smoothing=t.label_smoothing,
        content_fn=content_fn, content_weight=t.content_weight,
        jit_compile=bool(t.jit_compile if jit_compile is None else jit_compile),
    )
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
    extractor = losses.build_feature_extractor(
        t.content_loss, t.vgg_weights, backbone=t.content_extractor,
        feature_scale=t.content_feature_scale,
    )
    return lambda target, pred: losses.content_loss(extractor, target, pred)


def build_models(cfg: Config) -> tuple[keras.Model, keras.Model | None]:
    """Generator and (when the run is adversarial) discriminator of ``cfg``."""
    family = get_arch(cfg.model.arch)
    if getattr(family, "TASK", cfg.data.task) != cfg.data.task:
        raise ConfigError(
            f"arch '{cfg.model.arch}' is a {family.TASK} model, but data.task is '{cfg.data.task}'"
        )
    gen = family.build_generator(cfg)
    disc = None
    if cfg.train.adv_weight > 0:
        if not hasattr(family, "build_discriminator"):
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


def has_checkpoint(run_dir: str) -> bool:
    return tf.train.latest_checkpoint(os.path.join(run_dir, CKPT_DIR)) is not None


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
    """
    from tfface.data.pipeline import make_dataset
    from tfface.data.sources import make_source

    validate(cfg)
    os.makedirs(run_dir, exist_ok=True)
    cfg_path = os.path.join(run_dir, CONFIG_FILE)
    if resume and has_checkpoint(run_dir) and os.path.exists(cfg_path):
        saved = Config.load(cfg_path)
        if saved.to_dict() != cfg.to_dict():
            raise ConfigError(
                f"{run_dir} holds a run with a different configuration; resume it with "
                f"its own config (python -m pipelines.train --resume {run_dir}) or choose "
                "another --run-dir"
            )
    cfg.save(cfg_path)

    # Weight initialization follows the config's seed, so a run is reproducible.
    keras.utils.set_random_seed(cfg.data.seed)
    source = make_source(cfg.data)
    spe = steps_per_epoch(cfg, source.num_examples("train"))
    total = spe * cfg.train.epochs
    t = cfg.train

    strategy = make_strategy(t.strategy)
    with strategy.scope():
        content_fn = make_content_fn(cfg)  # fails early (clear message) without VGG weights
    with strategy.scope(), _precision(t.mixed_precision):
        gen, disc = build_models(cfg)
        check_memory(cfg, gen, disc)
        inputs = generator_inputs(cfg)
        trainer = build_trainer(cfg, gen, disc, content_fn=content_fn, total_steps=total)
        g_opt, d_opt = trainer.g_optimizer, trainer.d_optimizer

    best = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name="best_val_psnr")
    state = {"generator": gen, "g_optimizer": g_opt, "best_val_psnr": best}
    if disc is not None:
        state.update(discriminator=disc, d_optimizer=d_opt)
    if trainer.ema_generator is not None:
        state["ema_generator"] = trainer.ema_generator
    ckpt = tf.train.Checkpoint(**state)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(run_dir, CKPT_DIR), max_to_keep=2)

    start = 0
    if resume and manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        start = int(g_opt.iterations.numpy())
        log.info("resuming %s from step %d/%d", run_dir, start, total)
        print(f"Resuming {run_dir} from step {start}/{total}.")
    if start >= total:
        print(f"{run_dir} already finished ({start}/{total} steps).")
        return RunResult(run_dir, start, total, "completed",
                         best_val_psnr=float(best.numpy()), resumed_from=start)

    eval_ds = make_dataset(cfg, "eval", source=source)
    if t.eval_batches:
        eval_ds = eval_ds.take(t.eval_batches)
    sample_ds = make_dataset(cfg, "eval", batch_size=t.sample_count, source=source)
    sample = next(iter(sample_ds.take(1)))
    sample = {k: v.numpy() for k, v in sample.items()}

    guard = cbs.NaNGuard()
    limit = cbs.TimeLimit(t.max_minutes)
    bar = _progress_bar(total, start) if progress else None
    callbacks: list[keras.callbacks.Callback] = [
        guard,
        limit,
        cbs.CheckpointSaver(manager, t.save_every_steps, guard),
        cbs.BestWeights(run_dir, best, guard),
        cbs.SampleGrid(sample, inputs, os.path.join(run_dir, "samples")),
        keras.callbacks.CSVLogger(os.path.join(run_dir, "metrics.csv"), append=True),
        keras.callbacks.TensorBoard(
            os.path.join(run_dir, "logs"), update_freq=max(1, min(100, spe)),
            write_graph=False, profile_batch=0,
        ),
    ]
    if t.pretrain_steps:
        trainer.set_pretraining(start < t.pretrain_steps)
        callbacks.insert(0, cbs.PretrainPhase(t.pretrain_steps))
    if bar is not None:
        callbacks.append(cbs.Progress(bar))
    callbacks += list(extra_callbacks or [])

    history: dict[str, list[float]] = {}
    epoch0, offset = divmod(start, spe)
    # A run interrupted mid-epoch first finishes that epoch's remaining steps, then
    # continues with whole epochs, so the step count matches an uninterrupted run.
    phases = []
    if offset:
        phases.append((epoch0, epoch0 + 1, spe - offset))
        epoch0 += 1
    if epoch0 < t.epochs:
        phases.append((epoch0, t.epochs, spe))
    step = start
    try:
        for first, last, n_steps in phases:
            train_ds = make_dataset(cfg, "train", start_step=step, source=source)
            h = trainer.fit(
                train_ds, epochs=last, initial_epoch=first, steps_per_epoch=n_steps,
                validation_data=eval_ds, callbacks=callbacks, verbose=0,
            )
            for k, v in h.history.items():
                history.setdefault(k, []).extend(float(x) for x in v)
            step = int(g_opt.iterations.numpy())
            if trainer.stop_training:
                break
    finally:
        if bar is not None:
            bar.close()

    status = "completed"
    if guard.failed_at is not None:
        status = "nan"
        latest = manager.latest_checkpoint or "none"
        print(
            f"Training stopped: the loss became NaN/Inf at step {guard.failed_at}. "
            f"The last good checkpoint is kept ({latest}); lower the learning rates "
            f"(--set train.g_lr=...) and resume with --resume {run_dir}.",
            file=sys.stderr,
        )
    elif limit.hit:
        status = "time_limit"
        print(f"Stopped after the time limit at step {step}/{total}; resume with "
              f"--resume {run_dir}.")
    best_val = float(best.numpy())
    summary: dict[str, Any] = {
        "status": status, "step": step, "total_steps": total, "resumed_from": start,
        "best_val_psnr": best_val if math.isfinite(best_val) else None,
        "final": {k: v[-1] for k, v in history.items() if v},
    }
    with open(os.path.join(run_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return RunResult(run_dir, step, total, status, history,
                     summary["best_val_psnr"], resumed_from=start)


def load_generator(run_dir: str, which: str = "best") -> tuple[Config, keras.Model]:
    """Rebuild a run's generator from its config.json and load its ``best``/``last`` weights.

    Falls back to the newest checkpoint when the weight file is missing (a run that
    stopped before its first epoch ended).
    """
    cfg_path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(cfg_path):
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    cfg = Config.load(cfg_path)
    gen = get_arch(cfg.model.arch).build_generator(cfg)
    for name in (which, "last", "best"):
        path = os.path.join(run_dir, f"{name}.weights.h5")
        if os.path.exists(path):
            gen.load_weights(path)
            return cfg, gen
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, CKPT_DIR))
    if latest is None:
        raise FileNotFoundError(f"{run_dir} has no trained weights yet (no *.weights.h5, "
                                "no checkpoint)")
    key = "ema_generator" if cfg.train.ema_decay > 0 else "generator"
    tf.train.Checkpoint(**{key: gen}).restore(latest).expect_partial()
    return cfg, gen
