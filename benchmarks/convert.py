"""What each TFLite mode costs in size and fidelity, per architecture.

    python -m benchmarks.convert                        # sizes (default presets) + fidelity (tiny)
    python -m benchmarks.convert --part sizes --archs vnet
    python -m benchmarks.convert --part fidelity --train-steps 180 --qat-steps 50

Part ``sizes``: each family's default preset (the published configuration) is built with
its initial, untrained weights and converted to float, fp16, dynamic and int8; the file
sizes and their ratio to float are printed against the goals (int8/dynamic <= 27 %,
fp16 <= 52 %). Size does not depend on the weights' values, so untrained weights give
the sizes of a trained model; the int8 file is calibrated on ``--size-calibration``
pipeline samples (a handful is enough for the size; quality is measured in part 2).

Part ``fidelity``: a tiny model of each family is trained for ``--train-steps`` steps
(supervised, pixel loss, synthetic faces) and converted in every mode; printed are
PSNR(tflite, Keras) on a fixed eval batch (goals: fp16 >= 45 dB, int8 >= 30 dB) and
PSNR against ground truth, including the QAT file (``--qat-steps``) next to the
post-training int8 file. PSNR on 8-bit RGB images, no border crop.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import tfface  # noqa: F401
import tensorflow as tf

from tfface.config import resolve
from tfface.models import ARCHS, get_arch
from tfface.rundir import generator_inputs, load_generator

GOALS = {"fp16": 0.52, "dynamic": 0.27, "int8": 0.27}


def sizes(archs, calibration: int) -> None:
    from tfface.data.pipeline import make_dataset
    from tfface.export.quantize import QuantizationConfig, converter_for, representative_from

    print("== sizes: default presets, untrained weights (size does not depend on values)")
    print(f"{'arch/preset':<16}{'params':>12}{'mode':>9}{'MB':>9}{'% float':>9}  goal   s")
    for arch in archs:
        family = get_arch(arch)
        cfg = resolve(arch, family.default_preset)
        model = family.build_generator(cfg)
        keys = generator_inputs(cfg)
        rep = [[b[k].numpy() for k in keys]
               for b in make_dataset(cfg, "train", batch_size=1).take(calibration)]
        ref = None
        for mode in ("float", "fp16", "dynamic", "int8"):
            qcfg = (QuantizationConfig.for_int8() if mode == "int8"
                    else getattr(QuantizationConfig, f"for_{mode}")())
            t0 = time.time()
            content = converter_for(model, qcfg, representative_from(rep)).convert()
            dt = time.time() - t0
            ref = ref or len(content)
            ratio = len(content) / ref
            goal = GOALS.get(mode)
            verdict = "" if goal is None else ("ok" if ratio <= goal else "MISS")
            print(f"{arch + '/' + cfg.model.preset:<16}{model.count_params():>12,}{mode:>9}"
                  f"{len(content) / 1e6:>9.2f}{100 * ratio:>8.1f}%  {verdict:<5}{dt:>5.0f}",
                  flush=True)


def _train_tiny(arch: str, steps: int, root: str) -> str:
    from tfface.train import run

    spe = max(1, steps // 3)
    ov = {"train": dict(epochs=3, steps_per_epoch=spe, adv_weight=0.0, g_lr=2e-3,
                        save_every_steps=10 ** 6)}
    if arch == "srgan":  # supervised (SRResNet-MSE): the tiny preset's content net is random
        ov["train"].update(content_weight=0.0, pixel_weight=1.0, pretrain_steps=0)
    cfg = resolve(arch, "tiny", ov)
    run_dir = os.path.join(root, arch)
    result = run(cfg, run_dir, progress=False)
    assert result.status == "completed", result.status
    return run_dir


def fidelity(archs, train_steps: int, qat_steps: int, samples: int) -> None:
    from tfface.export.convert import (
        FIDELITY_IMAGES, convert_model, fidelity_batch, representative_inputs,
    )
    from tfface.export.quantize import QuantizationConfig

    print(f"\n== fidelity: tiny presets trained {train_steps} steps; fixed batch of "
          f"{FIDELITY_IMAGES} eval faces; PSNR on 8-bit RGB")
    print(f"{'arch':<9}{'mode':<9}{'vs Keras':>10}{'vs truth':>10}{'size KB':>9}  goal")
    with tempfile.TemporaryDirectory() as root:
        for arch in archs:
            cfg, model = load_generator(_train_tiny(arch, train_steps, root))
            batch = fidelity_batch(cfg)
            rep = representative_inputs(cfg, samples)
            qcfgs = [QuantizationConfig.for_float(), QuantizationConfig.for_fp16(),
                     QuantizationConfig.for_dynamic(), QuantizationConfig.for_int8(),
                     QuantizationConfig.for_qat(qat_steps)]
            for qcfg in qcfgs:
                res = convert_model(model, cfg, qcfg, os.path.join(root, "out", arch),
                                    representative=rep, check_batch=batch)
                fid = res.card["fidelity"]["psnr_db_vs_keras"]
                goal = {"fp16": 45.0, "int8": 30.0}.get(qcfg.mode)
                verdict = "" if goal is None else ("ok" if fid >= goal else "MISS")
                note = ""
                if qcfg.mode == "qat":
                    note = (f"  (vs the QAT Keras model; {qat_steps} steps; vs the float "
                            f"model {res.card['qat']['psnr_db_vs_float_keras']:.2f} dB)")
                print(f"{arch:<9}{qcfg.mode:<9}{fid:>10.2f}"
                      f"{res.card['quality']['psnr_db_vs_ground_truth']:>10.2f}"
                      f"{res.card['size_bytes'] / 1e3:>9.1f}  {verdict}{note}", flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["sizes", "fidelity", "all"], default="all")
    p.add_argument("--archs", nargs="+", default=sorted(ARCHS), choices=sorted(ARCHS))
    p.add_argument("--size-calibration", type=int, default=8, metavar="N",
                   help="calibration samples of the int8 size conversion (default 8)")
    p.add_argument("--train-steps", type=int, default=180)
    p.add_argument("--qat-steps", type=int, default=50)
    p.add_argument("--samples", type=int, default=100, help="int8 calibration samples")
    args = p.parse_args(argv)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    if args.part in ("sizes", "all"):
        sizes(args.archs, args.size_calibration)
    if args.part in ("fidelity", "all"):
        fidelity(args.archs, args.train_steps, args.qat_steps, args.samples)


if __name__ == "__main__":
    main()
