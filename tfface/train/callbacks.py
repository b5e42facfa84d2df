"""Callbacks of a training run: checkpoints, best weights, sample grids, progress, guards."""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Any

import numpy as np
import tensorflow as tf

from tfface import keras
from tfface.fileio import atomic_path
from tfface.imageio import to_uint8, write_image

log = logging.getLogger("tfface.train")


def _eval_generator(model) -> keras.Model:
    """The generator whose outputs are shown and saved (the EMA one when enabled)."""
    gen = getattr(model, "eval_generator", None)
    return model.generator if gen is None else gen


def _finite(logs: dict[str, Any] | None) -> bool:
    return all(
        math.isfinite(float(v)) for k, v in (logs or {}).items() if k.endswith("loss") or k == "pixel"
    )


def nonfinite_variables(variables) -> list[str]:
    """Names of the floating-point variables that hold a NaN or an Inf (one fused check
    first, names only on failure)."""
    floats = [v for v in variables if v.dtype.is_floating]
    if not floats or bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in floats])):
        return []
    return [v.name for v in floats if not bool(tf.reduce_all(tf.math.is_finite(v)))]


class NaNGuard(keras.callbacks.Callback):
    """Stop the run at the first non-finite loss; later callbacks then skip saving.

    The last checkpoint written before the failure stays the newest one, so the run
    can be inspected or resumed (e.g. with a lower learning rate). ``reason`` says
    what was found (a loss, or state that :class:`CheckpointSaver` found non-finite).
    """

    def __init__(self) -> None:
        super().__init__()
        self.failed_at: int | None = None
        self.reason = "the loss became NaN/Inf"

    def fail(self, step: int, reason: str) -> None:
        self.failed_at, self.reason = step, reason
        self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.failed_at is None and not _finite(logs):
            self.fail(int(self.model.g_optimizer.iterations.numpy()), "the loss became NaN/Inf")


class CheckpointSaver(keras.callbacks.Callback):
    """Resumable checkpoint (models, optimizers, step, best score) every N steps and per epoch.

    A checkpoint that cannot be written (the disk filled up, the folder went away)
    stops the run cleanly: ``error`` says why, and the previous checkpoints stay intact
    (TensorFlow writes each one to temporary files and renames them when complete).

    Only a good state is saved: ``variables`` (weights, batch-norm moving statistics,
    optimizer slots) are verified finite first. A NaN there — which the training loss
    does not always show, e.g. in the moving statistics — stops the run through the
    guard, so the newest checkpoint stays the last good one.

    ``agree(flag) -> bool`` (multi-worker runs): true on every worker when any worker's
    write failed, so all of them stop at the same step.
    """

    def __init__(self, manager: tf.train.CheckpointManager, every_steps: int, guard: NaNGuard,
                 variables=(), agree=None):
        super().__init__()
        self.manager = manager
        self.every = max(1, int(every_steps))
        self.guard = guard
        self.variables = list(variables)
        self.agree = agree
        self.error: str | None = None

    def _step(self) -> int:
        return int(self.model.g_optimizer.iterations.numpy())

    def save(self) -> None:
        if self.guard.failed_at is not None or self.error is not None:
            return
        step = self._step()
        bad = nonfinite_variables(self.variables)
        if bad:
            more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
            self.guard.fail(step, f"the model state became NaN/Inf ({bad[0]}{more})")
            return
        try:
            self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as e:
            msg = getattr(e, "message", None) or str(e)
            self.error = (f"the checkpoint of step {step} could not be written "
                          f"({msg.strip().splitlines()[0] if msg.strip() else type(e).__name__})")
            self.model.stop_training = True
        if self.agree is not None and self.agree(self.error is not None) and self.error is None:
            self.error = f"another worker could not write its checkpoint of step {step}"
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._step() % self.every == 0:
            self.save()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.save()


class BestWeights(keras.callbacks.Callback):
    """Keep the generator weights with the best validation score, and the last ones."""

    def __init__(self, run_dir: str, best_score: tf.Variable, guard: NaNGuard,
                 monitor: str = "val_psnr"):
        super().__init__()
        self.run_dir = run_dir
        self.best = best_score
        self.guard = guard
        self.monitor = monitor

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.guard.failed_at is not None:
            return
        gen = _eval_generator(self.model)
        try:
            # Atomic: a kill or a full disk during the write keeps the previous file.
            with atomic_path(os.path.join(self.run_dir, "last.weights.h5")) as tmp:
                gen.save_weights(tmp)
            score = (logs or {}).get(self.monitor)
            if score is not None and float(score) > float(self.best.numpy()):
                with atomic_path(os.path.join(self.run_dir, "best.weights.h5")) as tmp:
                    gen.save_weights(tmp)
                self.best.assign(float(score))
        except OSError as e:
            print(f"warning: could not write the generator weights ({e}); the checkpoints "
                  "still hold them", file=sys.stderr)


class DivergenceWarning(keras.callbacks.Callback):
    """Warn (log, stderr, ``warnings`` of summary.json) about a divergence that stays
    finite: the validation PSNR falling ``psnr_drop_db`` or more below the run's best,
    or an epoch's mean ``loss_key`` growing ``loss_factor`` times its lowest so far.

    The pixel loss is watched rather than ``g_loss``: it is the same objective in every
    phase, while ``g_loss`` jumps by design when an adversarial phase starts.
    """

    def __init__(self, best_score: tf.Variable, monitor: str = "val_psnr",
                 psnr_drop_db: float = 6.0, loss_key: str = "pixel", loss_factor: float = 10.0):
        super().__init__()
        self.best = best_score
        self.monitor = monitor
        self.psnr_drop_db = float(psnr_drop_db)
        self.loss_key = loss_key
        self.loss_factor = float(loss_factor)
        self.lowest_loss: float | None = None
        self.warnings: list[str] = []

    def _warn(self, text: str) -> None:
        self.warnings.append(text)
        log.warning(text)
        print(f"warning: {text}", file=sys.stderr)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        step = int(self.model.g_optimizer.iterations.numpy())
        best, score = float(self.best.numpy()), logs.get(self.monitor)
        if score is not None and math.isfinite(best) and float(score) < best - self.psnr_drop_db:
            self._warn(
                f"the run may be diverging: {self.monitor} fell to {float(score):.2f} dB at "
                f"epoch {epoch + 1} (step {step}), {best - float(score):.1f} dB below its best "
                f"({best:.2f} dB). Consider resuming from an earlier checkpoint with a lower "
                "learning rate (--resume RUN_DIR --set train.g_lr=...).")
        loss = logs.get(self.loss_key)
        if loss is None or not math.isfinite(float(loss)):
            return
        loss = float(loss)
        if self.lowest_loss is not None and loss > self.loss_factor * self.lowest_loss > 0:
            self._warn(
                f"the run may be diverging: the {self.loss_key} loss of epoch {epoch + 1} "
                f"(step {step}) is {loss:.4g}, {loss / self.lowest_loss:.0f}x its lowest "
                f"({self.lowest_loss:.4g}). Consider a lower learning rate "
                "(--resume RUN_DIR --set train.g_lr=...).")
        self.lowest_loss = loss if self.lowest_loss is None else min(self.lowest_loss, loss)


class SampleGrid(keras.callbacks.Callback):
    """A PNG per epoch: one row per face, columns input | output | target (| mask)."""

    def __init__(self, batch: dict[str, np.ndarray], input_keys: tuple[str, ...],
                 out_dir: str, target_key: str = "clean"):
        super().__init__()
        self.batch = batch
        self.input_keys = input_keys
        self.target_key = target_key
        self.out_dir = out_dir
        os.makedirs(out_dir, exist_ok=True)

    def render(self) -> np.ndarray:
        xs = [self.batch[k] for k in self.input_keys]
        out = _eval_generator(self.model).predict(xs[0] if len(xs) == 1 else xs, verbose=0)
        size = out.shape[1]
        shown = self.batch[self.input_keys[0]]
        if shown.shape[1] != size:  # low-resolution input: show it enlarged (nearest)
            reps = size // shown.shape[1]
            shown = np.repeat(np.repeat(shown, reps, axis=1), reps, axis=2)
        cols = [shown, out, self.batch[self.target_key]]
        if "mask" in self.batch:
            cols.append(np.repeat(self.batch["mask"] * 2.0 - 1.0, 3, axis=-1))
        rows = [np.concatenate([c[i] for c in cols], axis=1) for i in range(out.shape[0])]
        grid = to_uint8(np.concatenate(rows, axis=0))
        if size < 128:  # enlarge small faces (nearest) so the grid is readable
            k = -(-128 // size)
            grid = np.repeat(np.repeat(grid, k, axis=0), k, axis=1)
        return grid

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        try:
            write_image(os.path.join(self.out_dir, f"epoch_{epoch + 1:04d}.png"), self.render())
        except OSError as e:  # a sample grid is not worth stopping a run for
            print(f"warning: could not write the sample grid ({e})", file=sys.stderr)


BASELINE_METRICS = ("psnr", "ssim", "hole_sharpness")
"""What :class:`Baselines` logs of each baseline (when its scores have it)."""


class Baselines(keras.callbacks.Callback):
    """Put the run's baseline scores (computed once, on the same eval faces) into every
    epoch's logs as ``val_<baseline>_<metric>``, so the validation lines, metrics.csv,
    TensorBoard and the history show them next to the model's ``val_psnr``/``val_ssim``.

    Must come before the callbacks that read the logs (they share one dict).
    """

    def __init__(self, scores: dict[str, dict[str, float]]):
        super().__init__()
        self.scores = scores

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None or "val_psnr" not in logs:
            return
        for name, s in self.scores.items():
            for metric in BASELINE_METRICS:
                if metric in s:
                    logs[f"val_{name}_{metric}"] = s[metric]


class Progress(keras.callbacks.Callback):
    """One progress bar for the whole run (steps, rate, overall ETA, latest losses).

    The bar is owned by the caller so it survives the two ``fit`` calls of a
    resumed run.
    """

    def __init__(self, bar: Any, keys: tuple[str, ...] = ("g_loss", "d_loss", "psnr"),
                 baselines: tuple[str, ...] = ()):
        super().__init__()
        self.bar = bar
        self.keys = keys
        self.baselines = tuple(baselines)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.bar.update(1)
        if batch % 10 == 0 and logs:
            self.bar.set_postfix(
                {k: f"{float(logs[k]):.4g}" for k in self.keys if k in logs}, refresh=False
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        line = validation_line(logs or {}, self.baselines)
        self.bar.write(f"epoch {epoch + 1}: validation {line}")


def validation_line(logs: dict[str, Any], baselines: tuple[str, ...] = ()) -> str:
    """The model's validation metrics, then each baseline's PSNR/SSIM on the same faces:
    ``psnr 31.2  ssim 0.95  ... | damaged input 19.40 dB / 0.812 | OpenCV NS ...``."""
    from tfface.evaluation import BASELINE_NAMES

    base_keys = {f"val_{b}_{m}" for b in baselines for m in BASELINE_METRICS}
    own = "  ".join(f"{k[4:]} {float(v):.4g}" for k, v in logs.items()
                    if k.startswith("val_") and k not in base_keys)
    parts = [own]
    for b in baselines:
        if f"val_{b}_psnr" in logs:
            text = (f"{BASELINE_NAMES.get(b, b)} {float(logs[f'val_{b}_psnr']):.2f} dB / "
                    f"{float(logs[f'val_{b}_ssim']):.4f}")
            if f"val_{b}_hole_sharpness" in logs:
                text += f" / sharpness {float(logs[f'val_{b}_hole_sharpness']):.2f}"
            parts.append(text)
    return " | ".join(parts)


class TimeLimit(keras.callbacks.Callback):
    """Stop cleanly after ``minutes`` of training (the checkpoint is saved first).

    ``agree(flag) -> bool`` (multi-worker runs): the workers' clocks differ, so the
    decision is all-reduced each step and every worker stops at the same step.
    """

    def __init__(self, minutes: float | None, start: float | None = None, agree=None):
        super().__init__()
        self.deadline = None if minutes is None else (start or time.time()) + 60 * minutes
        self.agree = agree
        self.hit = False

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.deadline is None:
            return
        late = time.time() > self.deadline
        if self.agree is not None:
            late = self.agree(late)
        if late:
            self.hit = True
            self.model.stop_training = True


class CpuTime(keras.callbacks.Callback):
    """Add the run's CPU time (``cpu_minutes``: user + system time of this process, all
    threads, validation included) and its ``step`` to each epoch's logs, so metrics.csv
    shows what more training buys per CPU-minute. A resumed run continues from
    ``offset_minutes`` (the last value of the run's metrics.csv)."""

    def __init__(self, offset_minutes: float = 0.0):
        super().__init__()
        self.offset = float(offset_minutes)
        t = os.times()
        self.t0 = t.user + t.system

    @staticmethod
    def last_logged(csv_path: str) -> float:
        """The last ``cpu_minutes`` of a metrics.csv (0 when absent or unreadable)."""
        import csv

        try:
            with open(csv_path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            return float(rows[-1]["cpu_minutes"]) if rows else 0.0
        except (OSError, KeyError, ValueError, TypeError):
            return 0.0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        t = os.times()
        logs["cpu_minutes"] = self.offset + (t.user + t.system - self.t0) / 60.0
        opt = getattr(self.model, "g_optimizer", None)
        if opt is not None:
            logs["step"] = int(opt.iterations.numpy())


class PretrainPhase(keras.callbacks.Callback):
    """Generator pre-training for the first ``steps`` steps, then the full objective.

    The phase follows the optimizer's step count, so a resumed run lands in the
    right phase; the switch retraces the train step once (no per-step branch).
    """

    def __init__(self, steps: int):
        super().__init__()
        self.steps = int(steps)

    def _sync(self) -> None:
        on = int(self.model.g_optimizer.iterations.numpy()) < self.steps
        if on != self.model.pretraining:
            self.model.set_pretraining(on)
            self.model.train_function = self.model.make_train_function()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._sync()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._sync()
