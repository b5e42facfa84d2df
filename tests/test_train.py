"""The trainer (custom train_step), the run driver, resume and the train CLI."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfface import keras
from tfface.config import Config
from tfface.data.pipeline import make_dataset
from tfface.models import get_arch
from tfface.train import run
from tfface.train.trainer import RestorationTrainer

from conftest import Interrupt, tiny_config


def _fixed_batch(cfg):
    batch = next(iter(make_dataset(cfg, "eval", batch_size=4).take(1)))
    return {k: v for k, v in batch.items()}


def _l1(gen, batch):
    out = gen(batch["occluded"], training=False)
    return float(tf.reduce_mean(tf.abs(out - batch["clean"])))


def test_gan_steps_lower_generator_l1_on_a_fixed_batch():
    cfg = tiny_config()
    family = get_arch("vnet")
    tf.keras.utils.set_random_seed(0)
    gen, disc = family.build_generator(cfg), family.build_discriminator(cfg)
    trainer = RestorationTrainer(gen, disc)
    trainer.compile(keras.optimizers.Adam(2e-3, beta_1=0.5),
                    keras.optimizers.Adam(2.5e-4, beta_1=0.5),
                    pixel_loss="mse", pixel_weight=100.0, adv_weight=1.0, label_smoothing=0.1)
    batch = _fixed_batch(cfg)
    before = _l1(gen, batch)
    logs = None
    for _ in range(40):
        logs = trainer.train_step(batch)
    after = _l1(gen, batch)
    # Measured with one occlusion (boxes): 0.465 -> 0.298 after 40 steps (the default
    # mixture, which costs ~13 s of graph tracing, gave 0.460 -> 0.346).
    assert after < 0.85 * before, (before, after)
    assert {"g_loss", "adv", "d_loss", "pixel", "psnr"} <= set(logs)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert 0.0 < float(logs["d_real"]) < 1.0


def test_supervised_regime_has_no_discriminator_metrics():
    cfg = tiny_config(adv_weight=0.0)
    gen = get_arch("vnet").build_generator(cfg)
    trainer = RestorationTrainer(gen, None)
    trainer.compile(keras.optimizers.Adam(1e-3), adv_weight=0.0)
    logs = trainer.train_step(_fixed_batch(cfg))
    assert "d_loss" not in logs and "pixel" in logs
    with pytest.raises(ValueError, match="discriminator"):
        RestorationTrainer(gen, None).compile(keras.optimizers.Adam(1e-3), adv_weight=1.0)


def test_every_run_shows_its_baselines_on_the_same_eval_faces(trained_tiny_run):
    """metrics.csv and summary.json carry the damaged input's and OpenCV NS' scores,
    equal to scoring those baselines directly on the run's eval split."""
    import cv2

    from tfface.imageio import to_float, to_uint8
    from tfface.metrics import psnr, ssim

    cfg = Config.load(os.path.join(trained_tiny_run, "config.json"))
    batch = next(iter(make_dataset(cfg, "eval", batch_size=cfg.data.eval_count).take(1)))
    batch = {k: v.numpy() for k, v in batch.items()}
    ns = np.stack([to_float(cv2.inpaint(to_uint8(x), (m[..., 0] > 0.5).astype(np.uint8) * 255,
                                        3, cv2.INPAINT_NS))
                   for x, m in zip(batch["occluded"], batch["mask"])])
    want = {"input": batch["occluded"], "opencv_ns": ns}
    rows = list(csv.DictReader(open(os.path.join(trained_tiny_run, "metrics.csv"))))
    summary = json.load(open(os.path.join(trained_tiny_run, "summary.json")))
    assert set(summary["baselines"]) == {"input", "opencv_ns"}
    for name, pred in want.items():
        p = float(np.mean(psnr(batch["clean"], pred).numpy()))
        s = float(np.mean(ssim(batch["clean"], pred).numpy()))
        assert summary["baselines"][name]["psnr"] == pytest.approx(p, abs=1e-4)
        assert summary["baselines"][name]["ssim"] == pytest.approx(s, abs=1e-5)
        assert summary["baselines"][name]["images"] == cfg.data.eval_count
        for row in rows:  # the same values in every epoch's row
            assert float(row[f"val_{name}_psnr"]) == pytest.approx(p, abs=1e-4)
            assert float(row[f"val_{name}_ssim"]) == pytest.approx(s, abs=1e-5)
    # OpenCV beats doing nothing on these faces, and the verdict agrees with the numbers.
    assert summary["baselines"]["opencv_ns"]["psnr"] > summary["baselines"]["input"]["psnr"] + 3
    beats = all(summary["best_val_psnr"] > b["psnr"] for b in summary["baselines"].values())
    assert summary["beats_baselines"] is beats
    assert ("does NOT beat" in summary["verdict"]) is (not beats)
    assert "OpenCV Navier-Stokes" in summary["verdict"] and "damaged input" in summary["verdict"]


def test_validation_line_puts_baselines_after_the_model():
    from tfface.train.callbacks import validation_line

    line = validation_line({"val_psnr": 31.25, "val_ssim": 0.95, "val_input_psnr": 19.4,
                            "val_input_ssim": 0.8, "val_opencv_ns_psnr": 30.3,
                            "val_opencv_ns_ssim": 0.93, "psnr": 1.0},
                           ("input", "opencv_ns"))
    assert line == ("psnr 31.25  ssim 0.95 | damaged input 19.40 dB / 0.8000 | "
                    "OpenCV Navier-Stokes (true mask) 30.30 dB / 0.9300")


def test_resume_refuses_a_different_config(tmp_path):
    cfg = tiny_config(epochs=1, steps_per_epoch=2)
    run(cfg, str(tmp_path), progress=False)
    other = tiny_config(epochs=1, steps_per_epoch=2, batch_size=2)
    with pytest.raises(ValueError, match="different configuration"):
        run(other, str(tmp_path), progress=False)


def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = tiny_config(epochs=3, steps_per_epoch=2, save_every_steps=2, adv_weight=0.0)

    class Poison(keras.callbacks.Callback):
        """Corrupt the generator after step 3, so step 4's loss is NaN."""

        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.g_optimizer.iterations.numpy()) == 3:
                v = self.model.generator.trainable_variables[-1]  # output bias
                v.assign(tf.fill(v.shape, np.nan))

    res = run(cfg, str(tmp_path), progress=False, extra_callbacks=[Poison()])
    assert res.status == "nan" and res.step == 4
    # The checkpoint of step 2 is the newest; nothing poisoned was saved.
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("-2")
    from tfface.rundir import load_generator

    _, gen = load_generator(str(tmp_path))
    assert all(np.all(np.isfinite(w)) for w in gen.get_weights())


def test_a_run_that_cannot_fit_in_memory_is_refused_with_a_batch_that_fits(tmp_path, monkeypatch):
    from tfface.train import runner as run_mod

    cfg = tiny_config()
    gen, disc = run_mod.build_models(cfg)
    one = run_mod.estimate_train_memory(gen, disc, 1)
    assert run_mod.estimate_train_memory(gen, disc, 8) > one > 1e9  # grows with the batch
    monkeypatch.delenv("TFFACE_SKIP_MEMORY_CHECK", raising=False)
    monkeypatch.setattr(run_mod, "available_memory",
                        lambda: int(run_mod.estimate_train_memory(gen, disc, 2) / 0.9) + 1)
    with pytest.raises(ValueError, match=r"batch 4 needs about .*\(--batch-size 2 fits\)"):
        run(cfg, str(tmp_path), progress=False)
    assert not os.path.exists(tmp_path / "checkpoints")


def test_steps_per_execution_runs_saves_and_resumes_on_its_step_grid(tmp_path):
    from tfface.config import ConfigError

    with pytest.raises(ConfigError, match="save_every_steps .* multiple of"):
        tiny_config(steps_per_execution=2, save_every_steps=5)
    cfg = tiny_config(steps_per_execution=2, save_every_steps=2, steps_per_epoch=4,
                      epochs=1, adv_weight=0.0)
    with pytest.raises(KeyboardInterrupt):  # stops at the end of the 1st call (step 2)
        run(cfg, str(tmp_path), progress=False, extra_callbacks=[Interrupt(2)])
    result = run(cfg, str(tmp_path), progress=False)
    assert result.resumed_from == 2 and result.step == 4 and result.status == "completed"
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert np.isfinite(float(rows[-1]["val_psnr"]))


def test_sr_runs_show_bicubic_as_their_baseline(trained_tiny_sr_run):
    from tfface.evaluation import bicubic, eval_batches
    from tfface.metrics import psnr

    cfg = Config.load(os.path.join(trained_tiny_sr_run, "config.json"))
    summary = json.load(open(os.path.join(trained_tiny_sr_run, "summary.json")))
    assert set(summary["baselines"]) == {"bicubic"}
    batches = eval_batches(cfg, cfg.data.eval_count)
    want = float(np.mean(np.concatenate([psnr(b["clean"], bicubic(b)).numpy() for b in batches])))
    assert summary["baselines"]["bicubic"]["psnr"] == pytest.approx(want, abs=1e-4)
    rows = list(csv.DictReader(open(os.path.join(trained_tiny_sr_run, "metrics.csv"))))
    for r in rows:
        assert float(r["val_bicubic_ssim"]) == pytest.approx(
            summary["baselines"]["bicubic"]["ssim"], abs=1e-6)
    assert "bicubic upsampling" in summary["verdict"]


def _sr_finetune_config(init, **train):
    from tfface.config import resolve

    return resolve("srgan", "tiny", {"train": {"epochs": 1, "steps_per_epoch": 2,
                                               "pretrain_steps": 0, "save_every_steps": 1000,
                                               "init_weights": init, **train}})


def test_init_weights_starts_the_generator_from_another_runs_weights(trained_tiny_sr_run,
                                                                     tmp_path):
    from tfface.rundir import load_generator

    _, source = load_generator(trained_tiny_sr_run)
    cfg = _sr_finetune_config(trained_tiny_sr_run, g_lr=1e-12)
    assert run(cfg, str(tmp_path / "ft"), progress=False).status == "completed"
    _, tuned = load_generator(str(tmp_path / "ft"))
    # Two steps at a negligible learning rate: the trained weights are the source run's
    # (batch-norm statistics move with every batch, so only the trainable ones are
    # compared), which a random initialization (same seed, no init_weights) is far from.
    def trainable(model):
        return [w.numpy() for w in model.trainable_weights]

    for a, b in zip(trainable(source), trainable(tuned)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # The random initialization: what run() builds for a new run (seeded by the config;
    # the same weights, to 4e-12, as a 2-step run at this learning rate ends with).
    from tfface.train.runner import build_models

    fresh = _sr_finetune_config(None, g_lr=1e-12)
    keras.utils.set_random_seed(fresh.data.seed)
    scratch, _ = build_models(fresh)
    assert max(float(np.max(np.abs(a - b)))
               for a, b in zip(trainable(source), trainable(scratch))) > 1e-2
    # config.json records where the run started from; a resume continues from its own
    # checkpoint and no longer needs that file.
    saved = Config.load(str(tmp_path / "ft" / "config.json"))
    assert saved.train.init_weights == trained_tiny_sr_run
    moved = tmp_path / "moved"
    os.rename(trained_tiny_sr_run, moved)
    try:
        cfg2 = _sr_finetune_config(trained_tiny_sr_run, g_lr=1e-12, epochs=2)
        res = run(cfg2, str(tmp_path / "ft"), resume=True, progress=False)
        assert res.status == "completed" and res.resumed_from == 2 and res.step == 4
    finally:
        os.rename(moved, trained_tiny_sr_run)


def test_init_weights_of_another_model_or_with_nan_is_refused(trained_tiny_sr_run, tmp_path):
    from tfface.config import ConfigError

    vnet = tiny_config(epochs=1, steps_per_epoch=2, init_weights=trained_tiny_sr_run)
    with pytest.raises(ConfigError, match="holds a srgan .*builds a vnet"):
        run(vnet, str(tmp_path / "a"), progress=False)
    weights = os.path.join(trained_tiny_sr_run, "best.weights.h5")
    vnet.train.init_weights = weights  # a bare file: refused when its layers do not fit
    with pytest.raises(ConfigError, match="does not hold weights of this run's vnet"):
        run(vnet, str(tmp_path / "b"), progress=False)
    from tfface.rundir import load_generator

    _, gen = load_generator(trained_tiny_sr_run)
    w = gen.get_weights()
    w[0][...] = np.nan
    gen.set_weights(w)
    bad = str(tmp_path / "nan.weights.h5")
    gen.save_weights(bad)
    with pytest.raises(ConfigError, match="NaN/Inf"):
        run(_sr_finetune_config(bad), str(tmp_path / "c"), progress=False)
    with pytest.raises(ConfigError, match="no such file"):
        run(_sr_finetune_config(str(tmp_path / "missing")), str(tmp_path / "d"),
            progress=False)
    model_file = tmp_path / "model.keras"  # a whole-model file can carry code: never opened
    model_file.write_bytes(b"PK\x03\x04 not opened")
    with pytest.raises(ConfigError, match="not a Keras weights file"):
        run(_sr_finetune_config(str(model_file)), str(tmp_path / "e"), progress=False)
    for name in "abcde":  # nothing was trained or written as a result
        assert not os.path.exists(tmp_path / name / "best.weights.h5")
