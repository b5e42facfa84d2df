"""pix2pix and SRGAN: trainer integration, content loss, SR metrics, engine features."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfface import keras, losses, metrics
from tfface.config import ConfigError, resolve
from tfface.data.pipeline import make_dataset
from tfface.models import get_arch
from tfface.train import run
from tfface.train.runner import build_trainer, make_content_fn
from tfface.train.trainer import RestorationTrainer, learning_rate

FAMILIES = ("pix2pix", "srgan")


ONE = {"boxes": 1.0}
"""One occlusion for pix2pix's batches: tracing the default mixture costs about 13 s per
dataset built, and these tests are about the engine, not synthesis (tests/test_occlusion.py)."""


def _trainer(arch, **train):
    family = get_arch(arch)
    data = {"occlusions": ONE, "eval_occlusions": ONE} if family.task == "inpaint" else {}
    cfg = resolve(arch, "tiny", {"train": train, "data": data})
    keras.utils.set_random_seed(0)
    gen, disc = family.build_generator(cfg), family.build_discriminator(cfg)
    trainer = build_trainer(cfg, gen, disc, content_fn=make_content_fn(cfg))
    batch = next(iter(make_dataset(cfg, "eval", batch_size=4).take(1)))
    return cfg, trainer, dict(batch)


def _pixel(trainer, batch):
    out = trainer.generator(trainer._gen_inputs(batch), training=False)
    return float(losses.mse(batch["clean"], out))


@pytest.mark.parametrize("arch", FAMILIES)
def test_one_step_updates_every_weight_and_a_few_steps_lower_the_pixel_loss(arch):
    cfg, trainer, batch = _trainer(arch, g_lr=2e-3)
    players = (trainer.generator, trainer.discriminator)
    before = [[v.numpy().copy() for v in m.trainable_variables] for m in players]
    logs = trainer.train_step(batch)
    for model, old in zip(players, before):
        frozen = [v.name for v, w in zip(model.trainable_variables, old)
                  if np.array_equal(v.numpy(), w)]
        assert not frozen, f"{model.name}: no update (no gradient) for {frozen}"
    expected = {"g_loss", "pixel", "adv", "d_loss", "d_real", "d_fake", "g_grad_norm",
                "d_grad_norm", "psnr"}
    if arch == "srgan":
        expected.add("content")
    assert expected <= set(logs)
    assert all(np.isfinite(float(v)) for v in logs.values())
    # SRGAN's GAN objective has no pixel term (content + 1e-3 adv): its pixel loss
    # falls in the generator pre-training phase.
    trainer.set_pretraining(arch == "srgan")
    p0 = _pixel(trainer, batch)
    for _ in range(25):
        logs = trainer.train_step(batch)
    assert _pixel(trainer, batch) < 0.8 * p0
    assert all(np.isfinite(float(v)) for v in logs.values())


def test_pretraining_phase_trains_the_generator_alone():
    _, trainer, batch = _trainer("srgan")
    trainer.set_pretraining(True)
    d_before = [v.numpy().copy() for v in trainer.discriminator.trainable_variables]
    logs = trainer.train_step(batch)
    assert all(np.array_equal(v.numpy(), w)
               for v, w in zip(trainer.discriminator.trainable_variables, d_before))
    assert float(logs["g_loss"]) == pytest.approx(float(logs["pixel"]))
    trainer.set_pretraining(False)
    trainer.train_step(batch)
    assert not all(np.array_equal(v.numpy(), w)
                   for v, w in zip(trainer.discriminator.trainable_variables, d_before))


def test_ema_generator_trails_the_generator():
    _, trainer, batch = _trainer("pix2pix", ema_decay=0.5, g_lr=1e-2)
    w0 = trainer.generator.trainable_variables[0].numpy().copy()
    trainer.train_step(batch)
    w1 = trainer.generator.trainable_variables[0].numpy()
    e1 = trainer.ema_generator.trainable_weights[0].numpy() if trainer.ema_generator.trainable_weights else trainer.ema_generator.weights[0].numpy()
    np.testing.assert_allclose(e1, 0.5 * w0 + 0.5 * w1, atol=1e-6)
    assert trainer.eval_generator is trainer.ema_generator


# -- content loss ---------------------------------------------------------------------

def test_missing_vgg_weights_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        losses.build_feature_extractor("vgg54", str(tmp_path / "nope.h5"))
    msg = str(err.value)
    assert "nope.h5" in msg and "--vgg-weights" in msg and "--content-loss pixel" in msg
    assert "tf_keras.applications.VGG19(include_top=False)" in msg
    cfg = resolve("srgan", "tiny", {"train": {"content_extractor": "vgg19",
                                              "vgg_weights": str(tmp_path / "nope.h5")}})
    with pytest.raises(ConfigError, match="VGG19"):
        run(cfg, str(tmp_path / "run"), progress=False)
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_vgg_extractor_loads_weights_from_a_local_file(tmp_path):
    # The real file is 80 MB and not downloadable here: write random VGG19 weights in
    # the same layout and check the code path (truncation, preprocessing, pre-activation).
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = str(tmp_path / losses.VGG19_NOTOP_FILE)
    vgg.save_weights(path)
    post = losses.build_feature_extractor("vgg54", path)
    pre = losses.build_feature_extractor("vgg54_preact", path)
    x = tf.random.stateless_uniform((1, 32, 32, 3), seed=(3, 4), minval=-1, maxval=1)
    fp, fa = post(x), pre(x)
    assert fp.shape == (1, 2, 2, 512)
    assert float(tf.reduce_min(fp)) >= 0.0 and float(tf.reduce_min(fa)) < 0.0
    np.testing.assert_allclose(fp.numpy(), np.maximum(fa.numpy(), 0), atol=1e-4)


def test_content_loss_gives_generator_gradients_and_the_pixel_variant_needs_no_weights():
    cfg = resolve("srgan", "tiny")
    fn = make_content_fn(cfg)
    a = tf.random.stateless_uniform((2, 32, 32, 3), seed=(1, 1), minval=-1, maxval=1)
    b = tf.Variable(tf.zeros_like(a))
    with tf.GradientTape() as tape:
        value = fn(a, b)
    assert float(value) > 0 and tape.gradient(value, b) is not None
    assert float(fn(a, a)) == 0.0
    cfg.train.content_loss = "pixel"
    assert make_content_fn(cfg) is losses.mse
    cfg.train.content_weight = 0.0
    assert make_content_fn(cfg) is None


def test_vgg_preprocessing_is_caffe_bgr_mean_subtracted():
    x = tf.constant([[[[1.0, -1.0, 0.0]]]])  # R=255, G=0, B=127.5
    got = losses.FeatureExtractor.preprocess(x).numpy().ravel()
    np.testing.assert_allclose(got, [127.5 - 103.939, 0 - 116.779, 255 - 123.68], atol=1e-4)


# -- SR metrics -----------------------------------------------------------------------

def test_y_channel_psnr_with_border_crop():
    white = tf.ones((1, 16, 16, 3))
    black = -tf.ones((1, 16, 16, 3))
    np.testing.assert_allclose(metrics.rgb_to_y(metrics.to_uint8_levels(white)).numpy(), 235.0,
                               atol=1e-3)
    np.testing.assert_allclose(metrics.rgb_to_y(metrics.to_uint8_levels(black)).numpy(), 16.0)
    img = tf.random.stateless_uniform((2, 16, 16, 3), seed=(5, 6), minval=-1, maxval=1)
    assert np.all(metrics.psnr_y(img, img, 4).numpy() == 100.0)
    # Damage only the 2-pixel border: a crop of 2 ignores it, no crop does not.
    pad = tf.pad(img[:, 2:-2, 2:-2], [[0, 0], [2, 2], [2, 2], [0, 0]], constant_values=1.0)
    assert np.all(metrics.psnr_y(img, pad, 2).numpy() == 100.0)
    assert np.all(metrics.psnr_y(img, pad, 0).numpy() < 40.0)
    up = metrics.bicubic_upsample(img[:, ::4, ::4], 16)
    assert up.shape == (2, 16, 16, 3) and float(tf.reduce_max(tf.abs(up))) <= 1.0


def test_sr_validation_reports_y_metrics_next_to_bicubic():
    _, trainer, batch = _trainer("srgan")
    logs = trainer.test_step(batch)
    for k in ("psnr", "ssim", "psnr_y", "ssim_y", "bicubic_psnr", "bicubic_psnr_y",
              "bicubic_ssim_y"):
        assert k in logs and np.isfinite(float(logs[k])), k
    assert float(logs["bicubic_psnr_y"]) > 15.0


# -- schedules ------------------------------------------------------------------------

def test_learning_rate_schedules():
    assert learning_rate("constant", 1e-3, decay_steps=None, decay_rate=0.1,
                         total_steps=10) == 1e-3
    step = learning_rate("step", 1.0, decay_steps=10, decay_rate=0.1, total_steps=100)
    assert float(step(9)) == pytest.approx(1.0) and float(step(10)) == pytest.approx(0.1)
    lin = learning_rate("linear", 1.0, decay_steps=50, decay_rate=0.1, total_steps=100)
    assert [round(float(lin(s)), 3) for s in (0, 50, 75, 100)] == [1.0, 1.0, 0.5, 0.0]
    cos = learning_rate("cosine", 1.0, decay_steps=None, decay_rate=0.1, total_steps=100)
    assert float(cos(100)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ConfigError, match="lr_decay_steps"):
        resolve("pix2pix", "tiny", {"train": {"g_lr_schedule": "linear"}})


# -- runs -----------------------------------------------------------------------------

def _small_gan(mixed=False):
    """A two-conv generator and discriminator (fast to compile)."""
    keras.utils.set_random_seed(0)
    if mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inp = keras.Input((16, 16, 3), name="occluded")
        h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
        gen = keras.Model(inp, keras.layers.Conv2D(3, 3, padding="same", dtype="float32")(h))
        dinp = keras.Input((16, 16, 3))
        disc = keras.Model(dinp, keras.layers.Conv2D(1, 3, strides=2, padding="same",
                                                     dtype="float32")(dinp))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x = tf.random.stateless_uniform((4, 16, 16, 3), seed=(1, 2), minval=-1, maxval=1)
    return gen, disc, {"occluded": x, "clean": -x}


def test_mixed_precision_step_uses_loss_scaling_and_trains():
    from tfface.train.trainer import make_optimizer

    gen, disc, batch = _small_gan(mixed=True)
    assert gen.layers[1].compute_dtype == "float16"
    tr = RestorationTrainer(gen, disc)
    g_opt, d_opt = make_optimizer(1e-2, 0.5, True), make_optimizer(1e-3, 0.5, True)
    assert isinstance(g_opt, keras.mixed_precision.LossScaleOptimizer)
    tr.compile(g_opt, d_opt, pixel_weight=1.0, adv_weight=0.1)
    first = float(tr.train_step(batch)["pixel"])
    for _ in range(10):
        logs = tr.train_step(batch)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert float(logs["pixel"]) < first


def test_xla_train_step_matches_the_plain_step():
    outs = []
    for jit in (False, True):
        gen, disc, batch = _small_gan()
        tr = RestorationTrainer(gen, disc)
        tr.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-3),
                   pixel_weight=1.0, adv_weight=0.1, jit_compile=jit)
        for _ in range(2):
            tr.train_step(batch)
        outs.append(gen(batch["occluded"]).numpy())
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-4)


_MIRRORED = r"""
import sys, json
import tfface
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from tfface import keras
from tfface.train.trainer import RestorationTrainer
from tfface.train.runner import make_strategy

def step(strategy):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        inp = keras.Input((16, 16, 3))
        gen = keras.Model(inp, keras.layers.Conv2D(3, 3, padding="same")(inp))
        dinp = keras.Input((16, 16, 3))
        disc = keras.Model(dinp, keras.layers.Conv2D(1, 3, padding="same")(dinp))
        tr = RestorationTrainer(gen, disc)
        tr.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), pixel_weight=1.0,
                   adv_weight=1.0)
    x = tf.random.stateless_uniform((4, 16, 16, 3), seed=(1, 2), minval=-1, maxval=1)
    ds = tf.data.Dataset.from_tensors({"occluded": x, "clean": -x})
    tr.fit(ds, epochs=1, verbose=0)
    return [w.numpy() for w in gen.weights + disc.weights]

mirrored = make_strategy("mirrored")
assert mirrored.num_replicas_in_sync == 2, mirrored.num_replicas_in_sync
a = step(tf.distribute.get_strategy())
b = step(mirrored)
diff = max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))
print(json.dumps({"replicas": 2, "max_diff": diff}))
"""


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device(tmp_path):
    """Per-replica loss scaling: a global batch split over 2 replicas gives the same
    update as one device (SGD, so the gradient scale shows)."""
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["max_diff"] < 1e-5, out


def test_mirrored_run_of_a_gan_family_in_a_subprocess(tmp_path):
    code = (
        "import tfface, tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, "
        "[tf.config.LogicalDeviceConfiguration()] * 2)\n"
        "from tfface.config import resolve\nfrom tfface.train import run\n"
        "cfg = resolve('pix2pix', 'tiny', {'train': {'strategy': 'mirrored', 'epochs': 1, "
        "'steps_per_epoch': 2, 'ema_decay': 0.9}, "
        f"'data': {{'occlusions': {ONE}, 'eval_occlusions': {ONE}}}}})\n"
        f"r = run(cfg, {str(tmp_path)!r}, progress=False)\n"
        "assert r.status == 'completed', r.status\nprint('OK', r.history['g_loss'])\n"
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK" in proc.stdout


# -- CLI ------------------------------------------------------------------------------

def test_cli_flags_of_the_gan_engine():
    from pipelines import train as train_cli

    help_text = train_cli.build_parser().format_help()
    for flag in ("--content-loss", "--vgg-weights", "--pretrain-steps", "--strategy",
                 "--mixed-precision", "--jit-compile", "--ema-decay"):
        assert flag in help_text
    args = train_cli.build_parser().parse_args(
        ["--arch", "srgan", "--preset", "tiny", "--content-loss", "vgg54_preact",
         "--vgg-weights", "/w/vgg.h5", "--pretrain-steps", "7", "--strategy", "mirrored",
         "--mixed-precision", "--jit-compile", "--ema-decay", "0.99"])
    t = train_cli.config_from_args(args).train
    assert (t.content_loss, t.vgg_weights, t.pretrain_steps, t.strategy, t.mixed_precision,
            t.jit_compile, t.ema_decay) == ("vgg54_preact", "/w/vgg.h5", 7, "mirrored", True,
                                            True, 0.99)
    # pix2pix has no content term; choosing one turns it on.
    args = train_cli.build_parser().parse_args(["--arch", "pix2pix", "--content-loss", "pixel"])
    t = train_cli.config_from_args(args).train
    assert t.content_loss == "pixel" and t.content_weight == 1.0
    cfg = train_cli.config_from_args(train_cli.build_parser().parse_args(["--arch", "srgan"]))
    assert (cfg.data.task, cfg.data.scale, cfg.data.image_size) == ("sr", 4, 96)
    assert (cfg.train.content_loss, cfg.train.adv_weight) == ("vgg54", 1e-3)


def test_cli_without_vgg_weights_says_how_to_get_them(tmp_path, capsys, monkeypatch):
    from pipelines import train as train_cli

    monkeypatch.setenv("HOME", str(tmp_path))  # an empty Keras cache
    code = train_cli.main(["--arch", "srgan", "--preset", "tiny",
                           "--set", "train.content_extractor=vgg19",
                           "--run-dir", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--vgg-weights" in err and "Traceback" not in err
