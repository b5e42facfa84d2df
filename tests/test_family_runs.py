"""Every registered family, end to end through ``run``: a complete run directory, resume
across an interruption, and a generator that restores a photo.

Parametrized over the registry (``tfface.models.ARCHS``), so a family added there is
covered here without editing this file; what a family's run must log beyond the common
metrics follows from its spec (task, regime, discriminator), not from its name.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from conftest import Interrupt
from tfface.config import Config, resolve
from tfface.models import ARCHS, get_arch
from tfface.train import run

COMMON_FILES = ("config.json", "best.weights.h5", "last.weights.h5", "metrics.csv",
                "summary.json", "samples/epoch_0002.png", "checkpoints/checkpoint")

REGIME_METRICS = {
    "gan": set(),
    "wgan_gp": {"gp", "w_dist", "d_local"},
    "unmask": {"val_mask_acc", "val_mask_iou"},
}
"""Metrics a regime's runs log next to the common ones (a new regime must say here)."""


def _expected_metrics(family) -> set[str]:
    want = {"val_psnr", "val_ssim", "g_grad_norm"} | REGIME_METRICS[family.regime]
    if family.adversarial:
        want |= {"d_grad_norm"}
    if family.task == "sr":
        want |= {"val_psnr_y", "val_bicubic_psnr", "val_bicubic_psnr_y", "content",
                 "val_sharpness", "val_bicubic_sharpness"}
    else:
        want |= {"val_input_psnr", "val_opencv_ns_psnr"}
    return want


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_family_writes_a_complete_run_directory_and_resumes(arch, tmp_path):
    family = get_arch(arch)
    # 2 epochs x 3 steps, a checkpoint every 2 steps; the interruption at step 3 falls
    # inside epoch 1 (and, for SRGAN's tiny preset, inside its 3-step pre-training), so
    # the resume restarts from the step-2 checkpoint and crosses the epoch boundary.
    # One occlusion generator (the test is about the run, not synthesis): tracing the
    # full mixture's graphs costs most of a tiny run (13 s vs 0.3 s to build the dataset).
    occ = {"facemask" if family.regime == "unmask" else "boxes": 1.0}
    data = {"occlusions": occ, "eval_occlusions": occ} if family.task == "inpaint" else {}
    cfg = resolve(arch, family.tiny_preset, {
        "data": data,
        "train": {"epochs": 2, "steps_per_epoch": 3, "save_every_steps": 2, "ema_decay": 0.9,
                  "n_critic": 1}})
    with pytest.raises(KeyboardInterrupt):
        run(cfg, str(tmp_path), progress=False, extra_callbacks=[Interrupt(3)])
    assert not os.path.exists(tmp_path / "summary.json")  # an interrupted run is not done
    result = run(cfg, str(tmp_path), progress=False)
    assert (result.resumed_from, result.step, result.status) == (2, 6, "completed")
    # The resumed process redid the rest of epoch 1 (step 3) and ran epoch 2: it validated
    # twice, at steps 3 and 6 (the rows of metrics.csv below).
    assert len(result.history["val_psnr"]) == 2

    for name in COMMON_FILES:
        assert os.path.exists(tmp_path / name), name
    assert os.listdir(tmp_path / "logs")
    assert Config.load(tmp_path / "config.json").to_dict() == cfg.to_dict()
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(float(r["step"])) for r in rows] == [3, 6]
    assert all(5.0 < float(r["val_psnr"]) < 60.0 for r in rows)
    cpu = [float(r["cpu_minutes"]) for r in rows]
    assert 0.0 < cpu[0] < cpu[1]  # cumulative over the resume
    summary = json.load(open(tmp_path / "summary.json"))
    assert summary["status"] == "completed" and summary["step"] == 6
    missing = _expected_metrics(family) - set(summary["final"])
    assert not missing, f"{arch} run did not log {sorted(missing)}"

    # The run directory is enough to restore a photo, with no mask from the user for
    # families that find the occluder themselves.
    from tfface.restore.model import Restorer
    from tfface.restore.photo import restore_image
    from tfface.restore.square import FaceLocator
    from tfface.rundir import load_generator

    _, gen = load_generator(str(tmp_path))
    assert gen.output_names == ["restored"]
    restorer = Restorer.load(str(tmp_path))
    face = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    k = family.upscale(cfg)
    if restorer.spec.mask_input:  # the hole is given: only its pixels may change
        hole = np.zeros((48, 48), np.uint8)
        hole[20:36, 10:38] = 1
        out = restore_image(restorer, face, FaceLocator(), mask=hole, compose=True)
        assert np.array_equal(out[hole == 0], face[hole == 0])
        assert not np.array_equal(out[hole == 1], face[hole == 1])
    else:
        out = restore_image(restorer, face, FaceLocator())
    assert out.dtype == np.uint8 and out.shape == (48 * k, 48 * k, 3)
