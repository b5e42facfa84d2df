"""The realism fine-tune's parts: the hole-sharpness measure, the global + local patch
critic of the V-Net, dlib's face ResNet as a perceptual loss, and a fine-tune that starts
from a pixel-loss run although its critic differs. Real face: ``skimage.data.astronaut()``
(public domain)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import astronaut_crop
from tfface import keras, metrics
from tfface.config import ConfigError, resolve
from tfface.data.pipeline import make_dataset
from tfface.models import get_arch
from tfface.models.discriminators import global_local_patch_critic
from tfface.rundir import init_weights_file
from tfface.train.runner import build_trainer


def _unit(img: np.ndarray) -> tf.Tensor:
    return tf.constant(img[None].astype(np.float32) / 127.5 - 1.0)


def _hole(size: int, y0: int, y1: int, x0: int, x1: int) -> tf.Tensor:
    m = np.zeros((1, size, size, 1), np.float32)
    m[:, y0:y1, x0:x1] = 1.0
    return tf.constant(m)


def test_hole_sharpness_is_one_for_the_face_itself_low_for_a_blur_high_for_noise():
    import cv2

    face = astronaut_crop()
    mask = _hole(128, 60, 110, 30, 100)  # nose and mouth
    real = _unit(face)
    blurred = _unit(cv2.GaussianBlur(face, (0, 0), 3.0))
    noisy = _unit(np.clip(face + np.random.default_rng(0).normal(0, 25, face.shape), 0, 255))
    assert float(metrics.hole_sharpness(real, real, mask)[0]) == pytest.approx(1.0, abs=1e-6)
    assert float(metrics.hole_sharpness(real, blurred, mask)[0]) < 0.6
    assert float(metrics.hole_sharpness(real, noisy, mask)[0]) > 1.2
    # A flat fill (the mean colour, what a pure pixel loss drifts to) has no gradient inside.
    flat = np.where(mask.numpy()[0] > 0, face.reshape(-1, 3).mean(0), face)
    assert float(metrics.hole_sharpness(real, _unit(flat), mask)[0]) < 0.05
    # No hole left after the erosion: no score (NaN, left out of means).
    tiny = _hole(128, 60, 63, 30, 33)
    assert np.isnan(float(metrics.hole_sharpness(real, blurred, tiny)[0]))


def test_global_local_critic_judges_the_whole_face_and_the_hole_only():
    keras.utils.set_random_seed(1)
    critic = global_local_patch_critic(128, (8, 16, 16, 16))
    face = _unit(astronaut_crop())
    mask = _hole(128, 0, 16, 0, 16)  # top-left corner
    changed = face.numpy().copy()
    changed[:, 96:, 96:] = -1.0  # far from the hole: outside every hole patch's field
    a = critic([face, mask]).numpy()
    b = critic([tf.constant(changed), mask]).numpy()
    assert a.shape == (1, 2)
    assert abs(a[0, 0] - b[0, 0]) > 1e-6  # the global critic sees it
    assert a[0, 1] == pytest.approx(b[0, 1], abs=1e-6)  # the local one does not
    no_hole = critic([face, tf.zeros_like(mask)]).numpy()
    assert no_hole[0, 1] == pytest.approx(no_hole[0, 0], abs=1e-6)


def _vnet_cfg(**params):
    p = dict(mask_input=True, prefill=True, prefill_method="pyramid", prefill_iterations=2,
             keep_known=True)
    p.update(params)
    # One occlusion (boxes): the batches and the prior's faces built from this config
    # would otherwise trace the default mixture's graphs (~13 s per dataset).
    one = {"boxes": 1.0}
    return resolve("vnet", "tiny", {"model": {"params": p},
                                    "data": {"occlusions": one, "eval_occlusions": one},
                                    "train": {"adv_weight": 0.5, "gan_loss": "wgan-gp"}})


def test_vnet_global_local_run_reads_the_mask_and_updates_both_players():
    cfg = _vnet_cfg(disc="global_local")
    family = get_arch("vnet")
    assert family.disc_keys(("occluded", "mask"), cfg) == ("mask",)
    assert family.disc_keys(("occluded", "mask"), _vnet_cfg()) == ()
    keras.utils.set_random_seed(0)
    gen, disc = family.build_generator(cfg), family.build_discriminator(cfg)
    trainer = build_trainer(cfg, gen, disc)
    batch = dict(next(iter(make_dataset(cfg, "eval", batch_size=4).take(1))))
    d_before = [v.numpy().copy() for v in disc.trainable_variables]
    g_before = [v.numpy().copy() for v in gen.trainable_variables]
    logs = trainer.train_step(batch)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert {"adv", "d_loss", "gp"} <= set(logs)
    for old, var in zip(d_before, disc.trainable_variables):
        assert not np.array_equal(old, var.numpy()), var.name
    assert any(not np.array_equal(o, v.numpy()) for o, v in zip(g_before, gen.trainable_variables))
    val = trainer.test_step(batch)
    assert 0.0 < float(val["hole_sharpness"]) < 5.0


def test_unknown_critic_is_refused():
    with pytest.raises(ConfigError, match="disc"):
        _vnet_cfg(disc="stylegan")


def test_a_fine_tune_with_another_critic_starts_from_a_run_made_before_it(tmp_path):
    data = _vnet_cfg().to_dict()
    data["model"]["params"].pop("disc", None)  # a run written before model.params.disc existed
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(data))
    (run / "best.weights.h5").write_bytes(b"")
    assert init_weights_file(str(run), _vnet_cfg(disc="global_local")).endswith(
        "best.weights.h5")
    with pytest.raises(ConfigError, match="same --arch/--preset"):
        init_weights_file(str(run), _vnet_cfg(keep_known=False))


def test_dlib_face_perceptual_loss_is_zero_for_the_face_and_grows_with_blur():
    pytest.importorskip("dlib")
    import cv2

    from tfface.identity import dlib_resnet

    fn = dlib_resnet.perceptual_loss_fn(128)
    face = astronaut_crop()
    real = _unit(face)
    soft = _unit(cv2.GaussianBlur(face, (0, 0), 1.5))
    softer = _unit(cv2.GaussianBlur(face, (0, 0), 3.0))
    assert float(fn(real, real)) == pytest.approx(0.0, abs=1e-6)
    assert 0.0 < float(fn(real, soft)) < float(fn(real, softer))
    pred = tf.Variable(softer)
    with tf.GradientTape() as tape:
        loss = fn(real, pred)
    grad = tape.gradient(loss, pred)
    assert float(tf.reduce_max(tf.abs(grad))) > 0
    with pytest.raises(dlib_resnet.DlibResNetError, match="unknown feature layer"):
        dlib_resnet.perceptual_loss_fn(128, layers=("no_such_layer",))


def test_dlib_face_is_a_content_loss_of_the_config():
    pytest.importorskip("dlib")
    from tfface.train.runner import make_content_fn

    cfg = resolve("vnet", "tiny", {"train": {"content_loss": "dlib_face",
                                             "content_weight": 1.0}})
    fn = make_content_fn(cfg)
    size = cfg.data.image_size
    x = tf.zeros([2, size, size, 3])
    assert float(fn(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(fn(x, x + 0.5)) > 0
    # train.content_layers picks the feature maps: the edge layer alone is another loss
    noisy = x + tf.random.stateless_uniform(x.shape, (1, 2), -0.3, 0.3)
    shallow = make_content_fn(resolve("vnet", "tiny", {"train": {
        "content_loss": "dlib_face", "content_weight": 1.0, "content_layers": ["stem_relu"]}}))
    assert float(shallow(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert 0 < float(shallow(x, noisy)) != pytest.approx(float(fn(x, noisy)), rel=1e-3)
    with pytest.raises(ConfigError, match="unknown feature layer"):
        make_content_fn(resolve("vnet", "tiny", {"train": {
            "content_loss": "dlib_face", "content_weight": 1.0, "content_layers": ["nope"]}}))
    with pytest.raises(ConfigError, match="content_layers picks"):
        resolve("vnet", "tiny", {"train": {"content_layers": ["stem_relu"]}})
    with pytest.raises(ConfigError, match="non-empty list"):
        resolve("vnet", "tiny", {"train": {"content_loss": "dlib_face", "content_layers": []}})


def test_prior_fill_blends_the_prior_in_the_colours_around_the_hole():
    from tfface.models.layers import HoleFill, PriorHoleFill

    rng = np.random.default_rng(0)
    size = 32
    prior_img = rng.uniform(-0.5, 0.5, (size, size, 3)).astype(np.float32)
    mask = np.zeros((1, size, size, 1), np.float32)
    mask[:, 8:24, 6:26] = 1.0
    layer = PriorHoleFill(size, iterations=4, levels=3)
    plain = HoleFill(4, method="pyramid", levels=3)
    image = tf.constant(prior_img[None] + 0.2)  # the prior, lit brighter
    damaged = image * (1 - mask) + mask * -1.0
    # A zero prior is exactly the classical fill.
    np.testing.assert_allclose(layer([damaged, mask]).numpy(), plain([damaged, mask]).numpy(),
                               atol=1e-6)
    layer.prior.assign(prior_img)
    out = layer([damaged, mask]).numpy()
    # Known pixels are the input; the hole is the prior at the brightness around it.
    np.testing.assert_allclose(out[0][mask[0, ..., 0] == 0], damaged.numpy()[0][
        mask[0, ..., 0] == 0], atol=1e-6)
    np.testing.assert_allclose(out, image.numpy(), atol=5e-3)
    assert np.abs(plain([damaged, mask]).numpy() - image.numpy()).max() > 0.1


def test_a_prior_run_starts_from_a_run_without_one_and_gets_the_mean_face(tmp_path):
    from tfface.models.layers import PRIOR_LAYER
    from tfface.rundir import load_init_weights
    from tfface.train.prior import init_face_prior

    old = _vnet_cfg()
    keras.utils.set_random_seed(3)
    gen_old = get_arch("vnet").build_generator(old)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(old.to_dict()))
    gen_old.save_weights(str(run / "best.weights.h5"))
    new = _vnet_cfg(prefill_prior=True)
    new.train.init_weights = str(run)
    gen = get_arch("vnet").build_generator(new)
    load_init_weights(gen, new)
    for a, b in zip(gen_old.get_layer("vnet_output_conv").get_weights(),
                    gen.get_layer("vnet_output_conv").get_weights()):
        np.testing.assert_array_equal(a, b)
    prior = gen.get_layer(PRIOR_LAYER).prior
    assert not np.any(prior.numpy())
    assert init_face_prior(gen, new, faces=8)
    mean = prior.numpy()
    assert mean.shape == (new.data.image_size, new.data.image_size, 3)
    assert 0.01 < float(np.std(mean)) and -1.0 <= mean.min() and mean.max() <= 1.0
    assert not init_face_prior(gen, new)  # set once; a loaded prior is kept
    np.testing.assert_array_equal(prior.numpy(), mean)


def test_prior_needs_the_fill():
    with pytest.raises((ConfigError, ValueError), match="prefill_prior"):
        get_arch("vnet").build_generator(resolve("vnet", "tiny", {"model": {"params": dict(
            mask_input=True, prefill=False, prefill_prior=True)}}))


def test_a_ladder_restores_each_face_with_the_file_that_covers_it():
    from tfface.restore.model import InferenceError, ModelSpec, Restorer, RestorerLadder

    calls = []

    def fake(size, task="inpaint"):
        def predict(*xs):
            calls.append(xs[0].shape[1])
            return xs[0]

        return Restorer(predict, ModelSpec(task, size, size, 1, True), f"m{size}")

    ladder = RestorerLadder([fake(256), fake(128)])
    assert ladder.for_face(90).spec.input_size == 128
    assert ladder.for_face(128).spec.input_size == 128
    assert ladder.for_face(200).spec.input_size == 256
    assert ladder.for_face(600).spec.input_size == 256  # larger than every file: the largest
    face = np.zeros((180, 180, 3), np.uint8)
    ladder.restore_face(face, np.ones((180, 180), bool))
    assert calls == [256]
    with pytest.raises(InferenceError, match="same task"):
        RestorerLadder([fake(128), fake(256, task="sr")])
    with pytest.raises(InferenceError, match="same input size"):
        RestorerLadder([fake(128), fake(128)])


def _seeded_trainer(cfg):
    """The V-Net trainer of ``cfg`` with its generator and critic built from seed 0."""
    family = get_arch("vnet")
    keras.utils.set_random_seed(0)
    return build_trainer(cfg, family.build_generator(cfg), family.build_discriminator(cfg))


def test_critic_shift_moves_the_critics_view_of_image_and_hole_alike():
    cfg = _vnet_cfg(disc="global_local")
    cfg.train.critic_shift = 3
    trainer = _seeded_trainer(cfg)
    gen, disc = trainer.generator, trainer.discriminator
    assert trainer.critic_shift == 3
    img = tf.constant(np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32))
    # offset (o_y, o_x) shows the image moved by (3 - o_y, 3 - o_x): out[i] = image[i + o - 3]
    out = trainer._shifted(img, tf.constant([5, 1])).numpy()
    assert out.shape == img.shape
    np.testing.assert_array_equal(out[:, 10:50, 10:50], img.numpy()[:, 12:52, 8:48])
    np.testing.assert_array_equal(trainer._shifted(img, tf.constant([3, 3])).numpy(), img.numpy())
    # The critic reads the shifted face with the hole shifted alike: same scores as
    # judging the moved pair directly.
    mask = _hole(64, 20, 40, 16, 48)
    mask = tf.concat([mask, mask], 0)
    batch = {"mask": mask, "critic_offset": tf.constant([6, 0])}
    moved = disc([trainer._shifted(img, tf.constant([6, 0])),
                  trainer._shifted(mask, tf.constant([6, 0]))]).numpy()
    np.testing.assert_allclose(trainer._disc(img, batch, False).numpy(), moved, atol=1e-6)
    assert not np.allclose(moved, disc([img, mask]).numpy(), atol=1e-4)
    # Each step draws its offset in [0, 2 * shift]; a step with it trains both players.
    offsets = {tuple(trainer._with_critic_offset({})["critic_offset"].numpy()) for _ in range(40)}
    assert len(offsets) > 10 and all(0 <= o <= 6 for pair in offsets for o in pair)
    data = dict(next(iter(make_dataset(cfg, "eval", batch_size=2).take(1))))
    d_before = [v.numpy().copy() for v in disc.trainable_variables]
    logs = trainer.train_step(data)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert any(not np.array_equal(o, v.numpy()) for o, v in zip(d_before, disc.trainable_variables))
    cfg.train.critic_shift = 0
    assert "critic_offset" not in build_trainer(cfg, gen, disc)._with_critic_offset({})


@pytest.mark.parametrize("value", [-1, 2.5, 32])
def test_critic_shift_outside_its_range_is_refused(value):
    with pytest.raises(ConfigError, match="critic_shift"):
        resolve("vnet", "tiny", {"train": {"critic_shift": value}})


def test_grid_pattern_catches_grid_locked_stripes_in_the_hole_only():
    import cv2

    from tfface import losses

    face = astronaut_crop()
    real = _unit(face)
    mask = _hole(128, 56, 120, 24, 104)  # lower face
    rows = np.arange(128)[None, :, None, None]
    stripes = 0.05 * np.cos(2 * np.pi * rows / 8).astype(np.float32)  # 8 px, horizontal
    hole = mask.numpy()

    def score(pred):
        return float(losses.grid_pattern(real, tf.constant(pred, tf.float32), mask))

    assert score(real.numpy()) == pytest.approx(0.0, abs=1e-12)
    striped = score(real.numpy() + stripes * hole)
    assert striped == pytest.approx(0.05 ** 2 / 2, rel=0.05)  # the stripes' mean square
    assert score(real.numpy() + stripes * (1 - hole)) == pytest.approx(0.0, abs=1e-12)
    dots = 0.05 * np.cos(np.pi * rows) * np.cos(np.pi * np.arange(128))[None, None, :, None]
    assert score(real.numpy() + dots.astype(np.float32) * hole) > 0.5 * striped  # 2 px check
    # Noise hardly counts; the detail a soft fill misses counts a little (a hole of 80
    # cells does not average a face's detail away): 6 % of 3-level stripes at sigma 1.
    noise = np.random.default_rng(0).normal(0, 0.05, real.shape).astype(np.float32)
    assert score(real.numpy() + noise * hole) < 0.05 * striped
    blurred = _unit(cv2.GaussianBlur(face, (0, 0), 1.0)).numpy()
    assert score(np.where(hole > 0, blurred, real.numpy())) < 0.1 * striped
    # 16 px stripes (runs F and G) pass an 8 px fold and are caught by a 16 px one
    stripes16 = 0.05 * np.cos(2 * np.pi * rows / 16).astype(np.float32)
    pred16 = tf.constant(real.numpy() + stripes16 * hole, tf.float32)
    assert float(losses.grid_pattern(real, pred16, mask)) < 0.02 * striped
    assert float(losses.grid_pattern(real, pred16, mask, period=16)) == pytest.approx(
        0.05 ** 2 / 2, rel=0.05)


def test_grid_weight_adds_the_term_to_a_training_step_of_an_inpainting_run():
    cfg = _vnet_cfg(disc="global_local")
    cfg.train.grid_weight = 100.0
    trainer = _seeded_trainer(cfg)
    batch = dict(next(iter(make_dataset(cfg, "eval", batch_size=2).take(1))))
    logs = trainer.train_step(batch)
    assert "grid" in logs and np.isfinite(float(logs["grid"])) and float(logs["grid"]) > 0
    with pytest.raises(ConfigError, match="grid_weight applies to inpainting"):
        resolve("srgan", "tiny", {"train": {"grid_weight": 1.0}})
    for bad in (1, 2.5, True, 64):  # the tiny V-Net's images are 64 px: up to 32
        with pytest.raises(ConfigError, match="train.grid_period must be"):
            resolve("vnet", "tiny", {"train": {"grid_period": bad}})
    cfg.train.grid_period = 16  # the trainer folds at the configured period
    assert _seeded_trainer(cfg).grid_period == 16


def test_spectral_amplitude_charges_a_blur_but_hardly_a_displaced_detail():
    import cv2

    from tfface import losses

    face = astronaut_crop()
    real = _unit(face)

    def score(img, patch=32):
        return float(losses.spectral_amplitude(real, _unit(img), patch))

    assert score(face) == pytest.approx(0.0, abs=1e-6)
    blurs = [score(cv2.GaussianBlur(face, (0, 0), s)) for s in (0.7, 1.5, 3.0)]
    assert 0 < blurs[0] < blurs[1] < blurs[2]
    # the same texture two pixels to the side: L1 sees a large error, the amplitude little
    shifted = np.roll(face, 2, axis=1)
    l1_shift = float(np.abs(_unit(shifted) - real).mean())
    l1_blur = float(np.abs(_unit(cv2.GaussianBlur(face, (0, 0), 1.5)) - real).mean())
    assert l1_shift > l1_blur  # for L1 the shift is the worse picture ...
    assert score(shifted) < 0.4 * blurs[1]  # ... for the amplitude the blur is
    # squares where both agree add nothing: a blur in one 32 px square reaches only the 9
    # of the 49 half-overlapping squares that cover it
    damaged = face.copy()
    damaged[64:96, 64:96] = cv2.GaussianBlur(face, (0, 0), 3.0)[64:96, 64:96]
    assert 0 < score(damaged) < blurs[2] * 9 / 49
    with pytest.raises(ValueError, match="smaller than one 32 px square"):
        losses.spectral_amplitude(real[:, :16, :16], real[:, :16, :16])


def test_spectral_weight_adds_the_term_to_inpainting_and_sr_steps_with_xla():
    cfg = _vnet_cfg(disc="global_local")
    cfg.train.spectral_weight = 10.0
    cfg.train.spectral_patch = 16
    trainer = _seeded_trainer(cfg)
    batch = dict(next(iter(make_dataset(cfg, "eval", batch_size=2).take(1))))
    logs = trainer.train_step(batch)
    assert float(logs["spectral"]) > 0 and np.isfinite(float(logs["g_loss"]))
    sr = resolve("srgan", "tiny", {"train": {"spectral_weight": 1.0, "spectral_patch": 8,
                                             "content_weight": 0.0, "jit_compile": True}})
    family = get_arch("srgan")
    keras.utils.set_random_seed(0)
    t = build_trainer(sr, family.build_generator(sr), family.build_discriminator(sr))
    assert t.xla_train_step
    b = dict(next(iter(make_dataset(sr, "eval", batch_size=2).take(1))))
    before = [w.numpy().copy() for w in t.generator.trainable_weights]
    logs = t.train_step(b)
    assert float(logs["spectral"]) > 0
    assert any(np.abs(w.numpy() - w0).max() > 0
               for w, w0 in zip(t.generator.trainable_weights, before))
    for bad in (3, 2.5, True, 65):
        with pytest.raises(ConfigError, match="train.spectral_patch must be"):
            resolve("vnet", "tiny", {"train": {"spectral_patch": bad, "spectral_weight": 1.0}})
    # the default patch (32) is not checked against a smaller image while the term is off
    assert resolve("srgan", "tiny").train.spectral_patch == 32


def test_mirror_weight_distils_the_ema_generators_mirror_average_into_the_sr_step():
    sr = resolve("srgan", "tiny", {"train": {"mirror_weight": 1.0, "ema_decay": 0.99,
                                             "content_weight": 0.0, "adv_weight": 0.0,
                                             "pixel_weight": 0.0, "jit_compile": True}})
    family = get_arch("srgan")
    keras.utils.set_random_seed(0)
    t = build_trainer(sr, family.build_generator(sr), None)
    b = dict(next(iter(make_dataset(sr, "eval", batch_size=2).take(1))))
    # the teacher is the EMA copy's two calls averaged, so it is mirror-equivariant even
    # where the generator is not
    lr = b[t.input_keys[0]]
    plain = t.ema_generator(lr, training=False).numpy()
    mirrored = t.ema_generator(lr[:, :, ::-1], training=False).numpy()[:, :, ::-1]
    assert np.abs(plain - mirrored).max() > 1e-4  # a random network is not symmetric
    teacher = t._mirror_teacher(b).numpy()
    np.testing.assert_allclose(teacher, 0.5 * (plain + mirrored), atol=1e-5)
    flipped = dict(b, **{t.input_keys[0]: lr[:, :, ::-1]})
    np.testing.assert_allclose(t._mirror_teacher(flipped).numpy()[:, :, ::-1], teacher,
                               atol=1e-5)
    # the mirror term is the whole loss here, so the weights move by its gradient alone
    before = [w.numpy().copy() for w in t.generator.trainable_weights]
    logs = t.train_step(b)
    assert 0 < float(logs["mirror"]) < 1
    assert float(logs["g_loss"]) == pytest.approx(float(logs["mirror"]), rel=1e-5)
    assert any(np.abs(w.numpy() - w0).max() > 0
               for w, w0 in zip(t.generator.trainable_weights, before))
    with pytest.raises(ConfigError, match="train.mirror_weight must be >= 0"):
        resolve("srgan", "tiny", {"train": {"mirror_weight": -1.0}})
    with pytest.raises(ConfigError, match="needs train.ema_decay > 0"):
        resolve("srgan", "tiny", {"train": {"mirror_weight": 1.0, "ema_decay": 0.0}})
    with pytest.raises(ConfigError, match="unmask regime"):
        resolve("unmask", "tiny", {"train": {"mirror_weight": 1.0, "ema_decay": 0.99}})


def test_mirror_teacher_mirrors_every_input_of_a_two_input_generator():
    """A V-Net with the mask as a second input: image and mask are mirrored together."""
    cfg = resolve("vnet", "tiny", {"model": {"params": {"mask_input": True}},
                                   "train": {"mirror_weight": 1.0, "ema_decay": 0.99,
                                             "content_weight": 0.0, "adv_weight": 0.0}})
    family = get_arch("vnet")
    keras.utils.set_random_seed(0)
    t = build_trainer(cfg, family.build_generator(cfg), None)
    assert len(t.input_keys) == 2
    b = dict(next(iter(make_dataset(cfg, "eval", batch_size=2).take(1))))
    xs = [b[k] for k in t.input_keys]
    plain = t.ema_generator(xs, training=False).numpy()
    mirrored = t.ema_generator([x[:, :, ::-1] for x in xs], training=False).numpy()[:, :, ::-1]
    np.testing.assert_allclose(t._mirror_teacher(b).numpy(), 0.5 * (plain + mirrored),
                               atol=1e-5)
    logs = t.train_step(b)
    assert float(logs["mirror"]) > 0 and np.isfinite(float(logs["g_loss"]))
