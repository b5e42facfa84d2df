"""Train a face restoration model.

Examples::

    python -m pipelines.train --arch vnet                      # published config (GPU-sized)
    python -m pipelines.train --arch vnet --preset demo        # a few minutes on a CPU
    python -m pipelines.train --arch vnet --data-dir ~/faces   # your own face photos
    python -m pipelines.train --arch vnet --tfds celeb_a --tfds-data-dir ~/tensorflow_datasets
    python -m pipelines.train --arch pix2pix --preset demo     # U-Net + PatchGAN occlusion removal
    python -m pipelines.train --arch srgan --vgg-weights ~/vgg19_notop.h5   # SRGAN x4
    python -m pipelines.train --arch wgan_gl --preset demo     # WGAN-GP, global + local critics
    python -m pipelines.train --arch unmask --preset demo      # finds the occluder, then inpaints
    python -m pipelines.train --arch srgan --preset demo --content-loss pixel  # no VGG19 file
    python -m pipelines.train --resume runs/vnet-demo-20261121-130000
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import sys
from typing import Sequence

import tfface  # noqa: F401  (selects tf_keras before TensorFlow loads)
from tfface.cli import prog_name
from tfface.config import (CONTENT_LOSSES, Config, ConfigError, apply_overrides, parse_set, resolve,
                           validate)
from tfface.rundir import CONFIG_FILE, has_checkpoint


def build_parser() -> argparse.ArgumentParser:
    from tfface.models import ARCHS

    p = argparse.ArgumentParser(
        prog=prog_name("pipelines.train", "tfface-train"),
        description="Train a face restoration model. Runs go to a run directory holding "
        "the resolved config, checkpoints (resumable), best/last generator weights, "
        "metrics.csv, TensorBoard logs and per-epoch sample grids.",
        epilog="Presets: 'paper' is the published configuration (256 px; sized for a GPU), "
        "'demo' trains a small model in a few minutes on a CPU, 'tiny' runs in seconds "
        "(tests, smoke checks). Any config value can be set with --set, e.g. "
        "--set train.g_lr=2e-4 --set data.occlusions='{\"boxes\": 1}'.\n\n"
        "Writes into --run-dir DIR (default runs/ARCH-PRESET-TIMESTAMP/): config.json, "
        "checkpoints/, best.weights.h5 and last.weights.h5, metrics.csv (train and validation "
        "metrics per epoch, with the damaged input's and OpenCV's (SR: bicubic's) scores on "
        "the same eval faces), logs/ (TensorBoard), samples/epoch_NNNN.png and summary.json; "
        "with --export int8 also model_int8.tflite (model_int8_mixed.tflite when layers stay "
        "float) and its card (.json).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--arch", default="vnet", choices=sorted(ARCHS),
                   help="architecture family (default: vnet)")
    p.add_argument("--preset", default=None,
                   help="size preset of the family: paper (default), demo or tiny; "
                   "vnet, pix2pix, wgan_gl and srgan also mobile (128 px, the CPU recipes "
                   "of the shipped files and of the comparison in docs/model_families.md); "
                   "srgan also face (64 px from 32 px)")
    src = p.add_argument_group("data (default: the built-in synthetic faces)")
    src.add_argument("--data-dir", metavar="DIR",
                     help="train on a folder of face photos (jpg/png/webp/bmp, searched "
                     "recursively); faces are center-cropped to square and resized")
    src.add_argument("--tfds", metavar="NAME",
                     help="train on a TensorFlow Datasets dataset, e.g. celeb_a (must be "
                     "prepared in --tfds-data-dir; nothing is downloaded)")
    src.add_argument("--tfds-data-dir", metavar="DIR",
                     help="folder where the TFDS dataset was prepared")
    src.add_argument("--mask-dir", metavar="DIR",
                     help="folder of irregular hole masks (NVIDIA layout, white = hole) for the "
                     "'irregular' occlusion; add it to the mixture with --set "
                     "'data.occlusions={\"irregular\": 1}'")
    src.add_argument("--facemask-dir", metavar="DIR",
                     help="folder of face-mask overlay templates with alpha and masks.cfg "
                     "(MaskTheFace layout); the 'facemask' occlusion then warps them onto faces")
    src.add_argument("--data-service", metavar="grpc://HOST:PORT",
                     help="run data synthesis on tf.data service workers (see "
                     "docs/data_service.md)")
    src.add_argument("--image-size", type=int, metavar="PX",
                     help="side of the square training faces (preset default otherwise)")
    tr = p.add_argument_group("training")
    tr.add_argument("--epochs", type=int, help="number of epochs")
    tr.add_argument("--steps-per-epoch", type=int, metavar="N",
                    help="steps per epoch (default: one pass over the training data)")
    tr.add_argument("--batch-size", type=int, help="batch size")
    tr.add_argument("--adv-weight", type=float, metavar="W",
                    help="weight of the adversarial loss; 0 trains purely supervised "
                    "(no discriminator)")
    tr.add_argument("--content-loss", choices=list(CONTENT_LOSSES),
                    help="content term of the generator loss: VGG19 φ5,4 features after "
                    "(vgg54, SRGAN) or before (vgg54_preact, ESRGAN) the ReLU, the pixel "
                    "loss (pixel, no VGG19 weights needed), or dlib_face: a face perceptual "
                    "loss on four feature maps of dlib's face ResNet (offline; needs the "
                    "identity extra)")
    tr.add_argument("--vgg-weights", metavar="PATH",
                    help="VGG19 ImageNet weights (vgg19_weights_tf_dim_ordering_tf_kernels_"
                    "notop.h5) for the VGG content loss; default: the Keras cache "
                    "~/.keras/models/")
    tr.add_argument("--init-weights", metavar="RUN_DIR|FILE",
                    help="fine-tune: start the generator from a run's best weights (or a "
                    "*.weights.h5 file of the same model, e.g. android_demo_assets/srgan/keras) "
                    "instead of a random initialization")
    tr.add_argument("--identity-student", metavar="dlib|DIR",
                    help="identity loss: 'dlib' for dlib's face recognizer itself (rebuilt in "
                    "Keras from the identity extra's file), or a student of it made by python -m "
                    "pipelines.identity_student (turns the term on with weight 1 unless "
                    "--identity-weight says otherwise)")
    tr.add_argument("--identity-weight", type=float, metavar="W",
                    help="weight of the identity loss (squared descriptor distance in units of "
                    "dlib's same-person distance 0.6)")
    tr.add_argument("--pretrain-steps", type=int, metavar="N",
                    help="pre-train the generator on the pixel loss alone for N steps "
                    "before the adversarial/content phase (SRGAN)")
    tr.add_argument("--ema-decay", type=float, metavar="D",
                    help="keep an EMA of the generator weights (e.g. 0.999) for validation "
                    "and export; 0 = off")
    tr.add_argument("--strategy", choices=["default", "mirrored", "multiworker", "tpu"],
                    help="tf.distribute strategy (--batch-size is the global batch); "
                    "multiworker reads the cluster from TF_CONFIG, see docs/distributed.md")
    tr.add_argument("--mixed-precision", action="store_true", default=None,
                    help="mixed_float16 compute with loss scaling of both optimizers")
    tr.add_argument("--jit-compile", action="store_true", default=None,
                    help="compile the train step with XLA")
    tr.add_argument("--steps-per-execution", type=int, metavar="N",
                    help="train steps per compiled call (default 1); helps small models, "
                         "must divide the checkpoint interval and --pretrain-steps")
    tr.add_argument("--seed", type=int, help="global seed of data synthesis")
    tr.add_argument("--deterministic", action="store_true", default=None,
                    help="deterministic TensorFlow ops: the same seed gives bit-identical "
                    "losses and weights on the same machine (slower on GPUs)")
    tr.add_argument("--max-minutes", type=float, metavar="MIN",
                    help="stop cleanly after this many minutes (resumable)")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                    help="override any config value (repeatable), e.g. train.g_lr=2e-4")
    out = p.add_argument_group("run directory")
    out.add_argument("--run-dir", metavar="DIR",
                     help="where the run is written (default: runs/ARCH-PRESET-TIMESTAMP); "
                     "an existing interrupted run there is resumed automatically")
    out.add_argument("--resume", metavar="RUN_DIR",
                     help="resume an interrupted run with its saved config; --set (and "
                     "--epochs, --steps-per-epoch, --max-minutes) may change its learning "
                     "rates (e.g. after a NaN), its length and its bookkeeping, nothing else")
    out.add_argument("--export", choices=["int8"], default=None,
                     help="convert the trained model to .tflite when training ends (int8: "
                     "every convolution in int8; layers the architecture keeps float, e.g. "
                     "the V-Net's hole_fill, stay float: model_int8_mixed.tflite)")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def flag_overrides(args: argparse.Namespace) -> dict:
    """The config values the command-line flags (not --set) give, as nested dicts."""
    over: dict = {"data": {}, "train": {}}
    if args.data_dir and args.tfds:
        raise ConfigError("use either --data-dir or --tfds, not both")
    if args.data_dir:
        over["data"].update(source="folder", data_dir=os.path.expanduser(args.data_dir))
    for flag, key in (("mask_dir", "mask_dir"), ("facemask_dir", "facemask_dir")):
        if getattr(args, flag):
            path = os.path.expanduser(getattr(args, flag))
            if not os.path.isdir(path):
                raise ConfigError(f"--{flag.replace('_', '-')}: no such folder: {path}")
            over["data"][key] = path
    if args.data_service:
        over["data"]["data_service"] = args.data_service
    if args.tfds:
        over["data"].update(source="tfds", tfds_name=args.tfds)
        if args.tfds_data_dir:
            over["data"]["tfds_data_dir"] = os.path.expanduser(args.tfds_data_dir)
    for flag, section, key in [
        ("image_size", "data", "image_size"), ("seed", "data", "seed"),
        ("epochs", "train", "epochs"), ("steps_per_epoch", "train", "steps_per_epoch"),
        ("batch_size", "train", "batch_size"), ("adv_weight", "train", "adv_weight"),
        ("max_minutes", "train", "max_minutes"), ("content_loss", "train", "content_loss"),
        ("vgg_weights", "train", "vgg_weights"), ("pretrain_steps", "train", "pretrain_steps"),
        ("ema_decay", "train", "ema_decay"), ("strategy", "train", "strategy"),
        ("mixed_precision", "train", "mixed_precision"),
        ("jit_compile", "train", "jit_compile"), ("deterministic", "train", "deterministic"),
        ("steps_per_execution", "train", "steps_per_execution"),
    ]:
        if getattr(args, flag) is not None:
            over[section][key] = getattr(args, flag)
    if args.vgg_weights:
        over["train"]["vgg_weights"] = os.path.expanduser(args.vgg_weights)
    if args.identity_student:
        from tfface.identity.loss import DLIB

        over["train"]["identity_student"] = (
            DLIB if args.identity_student == DLIB
            else os.path.abspath(os.path.expanduser(args.identity_student)))
        over["train"]["identity_weight"] = (1.0 if args.identity_weight is None
                                            else args.identity_weight)
    elif args.identity_weight is not None:
        over["train"]["identity_weight"] = args.identity_weight
    if args.init_weights:
        over["train"]["init_weights"] = os.path.abspath(os.path.expanduser(args.init_weights))
    return over


def config_from_args(args: argparse.Namespace) -> Config:
    """The resolved config of a new run: preset, then flags, then --set."""
    cfg = resolve(args.arch, args.preset, flag_overrides(args))
    if args.content_loss and cfg.train.content_weight <= 0:
        # Choosing a content loss turns it on (families without one have weight 0).
        cfg.train.content_weight = 1.0
    apply_overrides(cfg, parse_set(args.set))
    validate(cfg)
    return cfg


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


_OP_ERROR_NOISE = ("Graph execution error", "Detected at node", "<stack traces",
                   "The op is created at", "File \"", "[[", "tf2xla conversion failed")


def op_error_summary(e: tf.errors.OpError) -> str:
    """The line of a TensorFlow runtime error that says what went wrong.

    A graph error's message starts with boilerplate (``Graph execution error:``, the
    node it was detected at, a stack of files); the cause is the first line after it.
    A Python error raised inside the input pipeline keeps only its own message. An op
    that XLA cannot compile gets the way out (``--jit-compile`` off).
    """
    text = (e.message or str(e)).strip()
    lines = [ln.strip() for ln in text.splitlines()]
    cause = next((ln for ln in lines if ln and not ln.startswith(_OP_ERROR_NOISE)),
                 lines[0] if lines else type(e).__name__)
    if "Error: " in cause:  # keep the Python error raised inside the input pipeline
        cause = cause.split("Error: ", 1)[1]
    cause = re.sub(r"\s*\{\{node [^}]*\}\}", "", cause).replace(" compatible with node)", ")")
    if len(cause) > 400:
        cause = cause[:400] + " ..."
    if "XLA_" in text and "unsupported operations" in text:
        cause += (" — an op of this model has no XLA kernel: train without --jit-compile")
    return cause


def _report_native_crashes() -> None:
    """A crash in native code (TensorFlow, dlib, OpenCV) prints the Python stack where it
    happened instead of ending a long run silently."""
    import faulthandler

    if not faulthandler.is_enabled():
        try:
            faulthandler.enable()
        except (AttributeError, ValueError, OSError):  # stderr without a file descriptor
            pass


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _report_native_crashes()
    import tensorflow as tf

    from tfface.data.sources import SourceError
    from tfface.evaluation import BASELINE_NAMES
    from tfface.fileio import OutputDirError
    from tfface.train import run
    from tfface.train.distributed import worker_role
    from tfface.train.runner import resume_config

    run_dir = args.resume or args.run_dir
    try:
        if args.resume:
            # Flags and --set may change the learning rates, the length and the
            # bookkeeping of the run (RESUMABLE_KEYS); anything else is refused.
            run_dir = args.resume
            cfg = resume_config(run_dir, flag_overrides(args), parse_set(args.set))
        else:
            cfg = config_from_args(args)
            run_dir = args.run_dir or os.path.join(
                "runs",
                f"{cfg.model.arch}-{cfg.model.preset}-"
                f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}",
            )
            saved = os.path.join(run_dir, CONFIG_FILE)
            if os.path.exists(saved) and has_checkpoint(run_dir):
                print(f"{run_dir} holds an interrupted run: resuming it with its saved config.")
                cfg = Config.load(saved)
        if cfg.model.preset == "paper" and not _has_gpu():
            print(
                "Note: preset 'paper' is the published, GPU-sized configuration; on this CPU "
                "it takes many hours (see the ETA below). For a run of a few minutes use "
                "--preset demo (or --preset tiny for a smoke test).",
                file=sys.stderr,
            )
        print(f"Run directory: {run_dir}")
        result = run(cfg, run_dir, progress=not args.quiet)
    except (ConfigError, SourceError, ValueError, OutputDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except tf.errors.OpError as e:  # e.g. a data folder that became unreadable mid-run
        first = op_error_summary(e)
        if isinstance(e, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError)) or \
                "Collective ops is aborted" in first:
            # A multi-worker job lost a worker: only a restart of all of them continues.
            first = first.split("}} ", 1)[-1]
            print(f"error: training stopped: another worker of the job is gone ({first})\n"
                  "The last checkpoint is kept; start all workers again with the same "
                  "command: they resume from it (docs/distributed.md).", file=sys.stderr)
            return 1
        print(f"error: training stopped: {first}\n"
              f"The last checkpoint is kept; fix the cause and resume with: "
              f"python -m pipelines.train --resume {run_dir}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted. Resume with: python -m pipelines.train --resume "
              f"{run_dir}", file=sys.stderr)
        return 130

    role = worker_role(cfg.train.strategy)
    if not role.is_chief:  # the chief writes (and reports) the run directory
        print(f"Training {result.status} at step {result.step}/{result.total_steps} "
              f"({role.describe()}; the chief writes {run_dir}).")
        return 1 if result.status in ("nan", "write_error") else 0
    best = "none" if result.best_val_psnr is None else f"{result.best_val_psnr:.2f} dB"
    print(f"Training {result.status} at step {result.step}/{result.total_steps}. "
          f"Best validation PSNR: {best}")
    for name, b in result.baselines.items():
        print(f"  baseline     {BASELINE_NAMES.get(name, name)}: PSNR {b['psnr']:.2f} dB, "
              f"SSIM {b['ssim']:.4f} ({b['images']} eval faces)")
    if result.verdict:
        print(f"Verdict: {result.verdict}")
    print(f"  config       {os.path.join(run_dir, 'config.json')}")
    print(f"  weights      {os.path.join(run_dir, 'best.weights.h5')}")
    print(f"  metrics      {os.path.join(run_dir, 'metrics.csv')}")
    print(f"  samples      {os.path.join(run_dir, 'samples')}")
    print(f"  TensorBoard  tensorboard --logdir {os.path.join(run_dir, 'logs')}")
    if result.status in ("nan", "write_error"):
        return 1
    # The converter loads only when asked for (like the training engine above).
    from tfface.export.convert import int8_keep_float

    keep = int8_keep_float(cfg)  # e.g. the classical fill of a prefill V-Net
    if args.export and result.status == "completed":
        return _export(run_dir, keep)
    print(f"Next: python -m tflite.convert --int8 --run {run_dir}"
          + (f" --keep-float {' '.join(keep)}" if keep else ""))
    return 0


def _export(run_dir: str, keep: list[str]) -> int:
    """``--export int8``: the finished run's int8 file and card in the run directory, as
    ``python -m tflite.convert --int8 --run RUN_DIR [--keep-float ...]`` writes them;
    the exit status."""
    from tfface.export.convert import (
        ConversionError, convert_run, converted_notes, load_run_to_convert,
    )
    from tfface.export.quantize import QuantizationConfig
    from tfface.fileio import OutputDirError
    from tflite.convert import print_report

    qcfg = QuantizationConfig.for_int8()
    if keep:  # int8 convolutions around the layers the family keeps in float
        qcfg = qcfg.with_selection(keep, None)
    try:
        run = load_run_to_convert(run_dir)
    except (FileNotFoundError, ValueError, OutputDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    def notes(res, q) -> None:
        for line in converted_notes(res, q):
            print(line)

    try:
        rows = convert_run(run, [qcfg], log=lambda text: print(text, flush=True),
                           on_converted=notes)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OutputDirError as e:  # another process converts into the run directory
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_report(run_dir, rows, run.cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
