"""Training throughput (images/s) of the framework's train step, per family and preset.

    python -m benchmarks.train_step                  # tiny + default presets, all families
    python -m benchmarks.train_step --presets tiny --steps 30

For each family it builds the preset's models, trainer and optimizers exactly as
``tfface.train.run`` does, feeds a fixed in-memory batch (``repeat()``, so the input
pipeline is not measured) and times the train function ``fit`` runs, after a warm-up
(tracing); figures are the best of
``--repeats`` runs. For
pix2pix it also times the same step written the TensorFlow tutorial's way (a plain
``tf.function`` with two tapes and the BCE + 100·L1 losses, no metrics), on the same
models and data, and prints the ratio framework / plain (>= 1 means the framework is
not slower), for the default one step per call and for ``--spe`` steps per call
(``train.steps_per_execution``). ``--jit`` adds an XLA-compiled variant of the framework step,
``--deterministic`` the step under ``tf.config.experimental.enable_op_determinism``
(what ``--deterministic`` / ``train.deterministic`` of a run turns on).

Default presets are GPU-sized; on a CPU the batch is capped with ``--max-batch``
(reported), and SRGAN's VGG19 content network uses random weights (same compute).
"""

from __future__ import annotations

import argparse
import time

import tfface  # noqa: F401
import tensorflow as tf

from tfface import keras, losses
from tfface.config import resolve
from tfface.data.pipeline import make_dataset
from tfface.models import get_arch
from tfface.rundir import generator_inputs
from tfface.train.runner import build_trainer, make_content_fn


def _content_fn(cfg):
    t = cfg.train
    if t.content_weight <= 0 or t.content_loss == "pixel" or t.content_extractor != "vgg19":
        return make_content_fn(cfg)
    vgg = keras.applications.VGG19(include_top=False, weights=None)  # random, same FLOPs
    last = vgg.get_layer("block5_conv4")
    ext = losses.FeatureExtractor(keras.Model(vgg.input, last.output), t.content_feature_scale)
    return lambda a, b: losses.content_loss(ext, a, b)


def _setup(arch, preset, max_batch, jit=False, steps_per_execution=1):
    cfg = resolve(arch, preset)
    cfg.train.batch_size = min(cfg.train.batch_size, max_batch)
    cfg.train.steps_per_execution = steps_per_execution
    family = get_arch(arch)
    keras.utils.set_random_seed(0)
    gen, disc = family.build_generator(cfg), family.build_discriminator(cfg)
    trainer = build_trainer(cfg, gen, disc, content_fn=_content_fn(cfg), jit_compile=jit)
    batch = next(iter(make_dataset(cfg, "eval", batch_size=cfg.train.batch_size).take(1)))
    keys = generator_inputs(cfg) + ("clean",)
    batch = {k: batch[k] for k in keys}
    ds = tf.data.Dataset.from_tensors(batch).repeat().prefetch(2)
    return cfg, trainer, ds, batch


def _time(fns, steps, repeats):
    """Best steps/s of each runner, by wall clock and by process CPU time.

    Repeats alternate between runners so that a slow phase of the (shared, 2-core)
    machine hits all of them alike. On a busy machine wall-clock rates swing by 2×
    between repeats; CPU time (all threads of this process) measures the work a
    step costs and stays within a few percent, so both are reported.
    """
    for fn in fns:
        fn(2)  # warm-up: tracing, allocations (both compiled variants of the step)
    wall = [[] for _ in fns]
    cpu = [[] for _ in fns]
    for _ in range(repeats):
        for fn, w, c in zip(fns, wall, cpu):
            t0, c0 = time.perf_counter(), time.process_time()
            fn(steps)
            w.append(steps / (time.perf_counter() - t0))
            c.append(steps / max(time.process_time() - c0, 1e-9))
    return [max(r) for r in wall], [max(r) for r in cpu]


def framework_runner(trainer, ds):
    """The step ``fit`` runs (``make_train_function`` on a persistent iterator): the
    per-call setup of ``fit`` (data handler, callbacks) is paid once per training run,
    not per step, and is excluded like the plain loop's setup."""
    fn = trainer.make_train_function()
    it = iter(ds)
    k = int(trainer._steps_per_execution.numpy())

    def loop(n):
        for _ in range(max(1, n // k)):  # n is a multiple of k (the warm-up excepted)
            out = fn(it)
        float(out["g_loss"])

    return loop


def plain_pix2pix_runner(trainer, ds, cfg):
    """The tutorial's train step on the same generator/discriminator and data."""
    gen, disc = trainer.generator, trainer.discriminator
    t = cfg.train
    g_opt = keras.optimizers.Adam(t.g_lr, beta_1=t.beta_1)
    d_opt = keras.optimizers.Adam(t.d_lr, beta_1=t.beta_1)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    lam = t.pixel_weight

    @tf.function
    def train_step(input_image, target):
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            gen_output = gen(input_image, training=True)
            disc_real_output = disc([target, input_image], training=True)
            disc_generated_output = disc([gen_output, input_image], training=True)
            gan_loss = bce(tf.ones_like(disc_generated_output), disc_generated_output)
            l1_loss = tf.reduce_mean(tf.abs(target - gen_output))
            gen_total_loss = gan_loss + lam * l1_loss
            disc_loss = (bce(tf.ones_like(disc_real_output), disc_real_output)
                         + bce(tf.zeros_like(disc_generated_output), disc_generated_output))
        g_grads = gen_tape.gradient(gen_total_loss, gen.trainable_variables)
        d_grads = disc_tape.gradient(disc_loss, disc.trainable_variables)
        g_opt.apply_gradients(zip(g_grads, gen.trainable_variables))
        d_opt.apply_gradients(zip(d_grads, disc.trainable_variables))
        return gen_total_loss, disc_loss

    it = iter(ds)

    def loop(n):
        for _ in range(n):
            b = next(it)
            out = train_step(b["occluded"], b["clean"])
        float(out[0])  # wait for the last step

    return loop


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", nargs="+", default=["vnet", "pix2pix", "srgan"])
    p.add_argument("--presets", nargs="+", default=["tiny", "default"])
    p.add_argument("--steps", type=int, default=20, help="timed steps (tiny presets)")
    p.add_argument("--default-steps", type=int, default=3, help="timed steps (default presets)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-batch", type=int, default=4, help="batch cap of default presets")
    p.add_argument("--jit", action="store_true", help="also time the XLA-compiled step")
    p.add_argument("--spe", type=int, default=5,
                   help="pix2pix: also time the framework with N steps per call "
                        "(train.steps_per_execution; 1 = skip)")
    p.add_argument("--deterministic", action="store_true",
                   help="also time the step with TensorFlow op determinism on")
    args = p.parse_args(argv)
    print(f"TensorFlow {tf.__version__}; devices: "
          f"{[d.name for d in tf.config.list_logical_devices()]}")
    print(f"{'arch':8} {'preset':7} {'px':>4} {'batch':>5} {'variant':10} {'img/s':>8} "
          f"{'img/cpu-s':>10}")
    for arch in args.archs:
        family = get_arch(arch)
        for preset in args.presets:
            preset = family.default_preset if preset == "default" else preset
            tiny = preset == "tiny"
            steps = args.steps if tiny else args.default_steps
            cap = 10_000 if tiny else args.max_batch
            cfg, trainer, ds, _ = _setup(arch, preset, cap)
            b, px = cfg.train.batch_size, cfg.data.image_size
            runners = [framework_runner(trainer, ds)]
            if arch == "pix2pix":
                runners.append(plain_pix2pix_runner(trainer, ds, cfg))
                if args.spe > 1:
                    spe_trainer, spe_ds = _setup(arch, preset, cap,
                                                 steps_per_execution=args.spe)[1:3]
                    runners.append(framework_runner(spe_trainer, spe_ds))
                    steps = -(-steps // args.spe) * args.spe
            wall, cpu = _time(runners, steps, args.repeats)
            wall, cpu = [r * b for r in wall], [r * b for r in cpu]
            row = f"{arch:8} {preset:7} {px:4d} {b:5d}"
            print(f"{row} {'framework':10} {wall[0]:8.2f} {cpu[0]:10.2f}", flush=True)
            if arch == "pix2pix":
                print(f"{row} {'plain loop':10} {wall[1]:8.2f} {cpu[1]:10.2f}"
                      f"   framework/plain = {wall[0] / wall[1]:.3f} (wall), "
                      f"{cpu[0] / cpu[1]:.3f} (cpu)", flush=True)
                if args.spe > 1:
                    print(f"{row} {f'fw {args.spe}/call':10} {wall[2]:8.2f} {cpu[2]:10.2f}"
                          f"   framework/plain = {wall[2] / wall[1]:.3f} (wall), "
                          f"{cpu[2] / cpu[1]:.3f} (cpu)", flush=True)
            if args.jit:
                cfg, trainer, ds, _ = _setup(arch, preset, cap, jit=True)
                xw, xc = _time([framework_runner(trainer, ds)], steps, args.repeats)
                print(f"{row} {'xla':10} {xw[0] * b:8.2f} {xc[0] * b:10.2f}"
                      f"   xla/framework = {xw[0] * b / wall[0]:.3f} (wall), "
                      f"{xc[0] * b / cpu[0]:.3f} (cpu)", flush=True)
            if args.deterministic:
                from tfface.train.runner import _OpDeterminism

                with _OpDeterminism(True):
                    cfg, trainer, ds, _ = _setup(arch, preset, cap)
                    det = _time([framework_runner(trainer, ds)], steps, args.repeats)[0][0] * b
                print(f"{row} {'determin.':10} {det:8.2f}"
                      f"   deterministic/framework = {det / wall[0]:.3f} (wall)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
