"""wgan_gl (global + local WGAN-GP critics) and unmask (segmentation + gated inpainting)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfface import keras, losses
from tfface.config import ConfigError, resolve
from tfface.metrics import mask_scores
from tfface.models import get_arch
from tfface.models.unmask import HardMask, gated_conv, imputed_conv, stage_model
from tfface.models.wgan_gl import HoleCrop
from tfface.train.runner import build_trainer, make_content_fn
from tfface.train.unmask import UnmaskTrainer
from tfface.train.wgan import WGANTrainer


def _batch(size: int, n: int = 4) -> dict[str, tf.Tensor]:
    """A fixed inpainting batch: smooth faces-like images, a box hole filled with a
    flat colour (an occluder a segmenter can find)."""
    yy, xx = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    clean = np.stack([np.stack([0.6 * np.sin(3 * xx + i) * np.cos(2 * yy),
                                0.5 * xx * yy + 0.1 * i, 0.4 * np.cos(4 * yy - i)], -1)
                      for i in range(n)]).astype(np.float32)
    mask = np.zeros((n, size, size, 1), np.float32)
    for i in range(n):
        mask[i, size // 2 + i : size - 4, 6 + i : size - 8] = 1.0
    occluded = clean * (1 - mask) + mask * 0.8
    return {k: tf.constant(v) for k, v in
            (("clean", clean), ("occluded", occluded), ("mask", mask))}


def _trainer(arch, with_batch=True, **train):
    cfg = resolve(arch, "tiny", {"train": train} if train else None)
    family = get_arch(arch)
    keras.utils.set_random_seed(0)
    gen, disc = family.build_generator(cfg), family.build_discriminator(cfg)
    trainer = build_trainer(cfg, gen, disc, content_fn=make_content_fn(cfg))
    return cfg, trainer, _batch(cfg.data.image_size) if with_batch else None


def _l1(trainer, batch):
    out = trainer.generator(batch["occluded"], training=False)
    return float(losses.l1(batch["clean"], out))


# -- training regimes ----------------------------------------------------------------

def test_wgan_step_updates_both_critics_n_critic_times_and_lowers_the_loss():
    cfg, trainer, batch = _trainer("wgan_gl", g_lr=3e-3)
    assert isinstance(trainer, WGANTrainer) and trainer.n_critic == cfg.train.n_critic == 2
    before = [v.numpy().copy() for v in trainer.discriminator.trainable_variables]
    step = tf.function(trainer.train_step)
    logs = step(batch)
    assert int(trainer.d_optimizer.iterations.numpy()) == 2  # n_critic critic updates
    assert int(trainer.g_optimizer.iterations.numpy()) == 1  # per generator update
    frozen = [v.name for v, w in zip(trainer.discriminator.trainable_variables, before)
              if np.array_equal(v.numpy(), w)]
    assert not frozen, frozen  # the global and the local critic both learn
    assert {"g_loss", "pixel", "adv", "d_loss", "w_dist", "gp", "d_global", "d_local"} <= set(logs)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert float(logs["gp"]) >= 0.0
    l0 = _l1(trainer, batch)
    for _ in range(20):
        step(batch)
    assert _l1(trainer, batch) < 0.8 * l0


def test_unmask_step_trains_all_stages_and_lowers_every_loss():
    cfg, trainer, batch = _trainer("unmask", g_lr=3e-3)
    assert isinstance(trainer, UnmaskTrainer)
    step = tf.function(trainer.train_step)
    logs = step(batch)
    assert {"g_loss", "pixel", "coarse", "dice", "content", "adv", "d_loss", "mask_acc",
            "mask_iou"} <= set(logs)
    stages = stage_model(trainer.generator)

    def scores():
        # Batch statistics (the BN moving averages barely move in 25 steps).
        prob, coarse, refined, _ = stages(batch["occluded"], training=True)
        return (float(losses.dice_loss(batch["mask"], prob)),
                float(losses.l1(batch["clean"], coarse)), float(losses.l1(batch["clean"], refined)))

    s0 = scores()
    for _ in range(25):
        logs = step(batch)
    s1 = scores()
    (dice0, coarse0, refined0), (dice1, coarse1, refined1) = s0, s1
    assert dice1 < 0.5 * dice0 and coarse1 < 0.95 * coarse0 and refined1 < 0.95 * refined0, \
        (s0, s1)
    assert all(np.isfinite(float(v)) for v in logs.values())
    for m in trainer.metrics:
        m.reset_state()
    val = trainer.test_step(batch)
    acc, iou = mask_scores(batch["mask"], stages(batch["occluded"], training=False)[0])
    assert float(val["mask_acc"]) == pytest.approx(float(tf.reduce_mean(acc)), abs=1e-6)
    assert float(val["mask_iou"]) == pytest.approx(float(tf.reduce_mean(iou)), abs=1e-6)
    assert float(val["dice"]) > 0


def test_regime_options_come_from_the_config():
    cfg, trainer, _ = _trainer("wgan_gl", False, n_critic=3, gp_weight=5.0)
    assert (trainer.n_critic, trainer.gp_weight) == (3, 5.0)
    _, trainer, _ = _trainer("unmask", False, coarse_weight=0.5, mask_weight=2.0)
    assert (trainer.coarse_weight, trainer.mask_weight) == (0.5, 2.0)
    with pytest.raises(ConfigError, match="n_critic"):
        resolve("wgan_gl", "tiny", {"train": {"n_critic": 0}})


# -- the local critic's crop ----------------------------------------------------------

def test_local_crop_is_centred_on_the_hole_and_clamped_inside_the_image():
    s, n = 32, 16
    image = tf.reshape(tf.range(2 * s * s * 3, dtype=tf.float32), (2, s, s, 3))
    mask = np.zeros((2, s, s, 1), np.float32)
    mask[0, 10:14, 18:24] = 1.0  # bbox rows 10-13, cols 18-23: centre (12, 21)
    mask[1, 0:3, 28:32] = 1.0  # hole in a corner: the crop is clamped
    off = HoleCrop.offsets(tf.constant(mask), n).numpy()
    np.testing.assert_array_equal(off, [[4, 13], [0, 16]])
    crop = HoleCrop(n)([image, tf.constant(mask)]).numpy()
    np.testing.assert_array_equal(crop[0], image.numpy()[0, 4:20, 13:29])
    np.testing.assert_array_equal(crop[1], image.numpy()[1, 0:16, 16:32])
    # Bounding-box centre = crop centre (the hole sits in the middle of what is judged).
    rows, cols = np.nonzero(mask[0, ..., 0])
    assert (rows.min() + rows.max() + 1) / 2 == off[0, 0] + n / 2
    assert (cols.min() + cols.max() + 1) / 2 == off[0, 1] + n / 2
    # No hole: the centre of the image.
    empty = HoleCrop.offsets(tf.zeros((1, s, s, 1)), n).numpy()
    np.testing.assert_array_equal(empty, [[8, 8]])


def test_local_crop_has_first_and_second_order_gradients():
    s, n = 16, 8
    x = tf.random.stateless_uniform((1, s, s, 3), seed=(1, 1))
    mask = np.zeros((1, s, s, 1), np.float32)
    mask[0, 2:6, 3:7] = 1.0  # centre (4, 5): crop rows 0-7, cols 1-8
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = tf.reduce_sum(tf.square(HoleCrop(n)([x, tf.constant(mask)])))
        g = inner.gradient(y, x)
        gsum = tf.reduce_sum(tf.square(g))
    inside = np.zeros((1, s, s, 3), bool)
    inside[0, 0:8, 1:9] = True
    np.testing.assert_allclose(g.numpy()[inside], 2 * x.numpy()[inside], rtol=1e-6)
    assert not np.any(g.numpy()[~inside])
    h = outer.gradient(gsum, x)  # what the gradient penalty differentiates
    np.testing.assert_allclose(h.numpy()[inside], 8 * x.numpy()[inside], rtol=1e-5)


def test_critics_score_the_whole_face_and_the_hole_crop():
    cfg = resolve("wgan_gl", "tiny")
    critics = get_arch("wgan_gl").build_discriminator(cfg)
    s = cfg.data.image_size
    x = tf.random.stateless_uniform((2, s, s, 3), seed=(5, 6), minval=-1, maxval=1)
    mask = np.zeros((2, s, s, 1), np.float32)
    mask[:, 4:10, 4:10] = 1.0
    scores = critics([x, tf.constant(mask)]).numpy()
    assert scores.shape == (2, 2)
    # Changing a pixel far from the hole moves the global score only.
    far = x.numpy().copy()
    far[:, s - 1, s - 1] += 0.5
    moved = critics([tf.constant(far), tf.constant(mask)]).numpy()
    assert np.all(moved[:, 0] != scores[:, 0])
    np.testing.assert_array_equal(moved[:, 1], scores[:, 1])


# -- gated convolution, segmentation, compositing ---------------------------------------

def test_gated_conv_is_feature_times_sigmoid_gate():
    inp = keras.Input((8, 8, 2))
    model = keras.Model(inp, gated_conv(inp, 4, 3, "g", activation="relu6"))
    x = tf.random.stateless_normal((1, 8, 8, 2), seed=(2, 3)) * 3
    feat = model.get_layer("g_feature")(x)
    gate = model.get_layer("g_gate")(x)
    expected = np.clip(feat.numpy(), 0, 6) / (1 + np.exp(-gate.numpy()))
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    # A closed gate (very negative gate bias) blocks the features.
    b = model.get_layer("g_gate").bias
    b.assign(tf.fill(b.shape, -50.0))
    assert float(tf.reduce_max(tf.abs(model(x)))) < 1e-6


def test_imputed_conv_replaces_uncertain_features_by_their_neighbourhood_mean():
    inp, cert = keras.Input((8, 8, 2)), keras.Input((8, 8, 1))
    f, c = imputed_conv(inp, cert, 4, 3, "i", activation="relu6")
    model = keras.Model([inp, cert], [f, c, keras.Model([inp, cert], f).get_layer(
        "i_impute").output])
    x = tf.random.stateless_normal((1, 8, 8, 2), seed=(4, 5)) * 3
    hole = np.zeros((1, 8, 8, 1), np.float32)
    hole[:, 2:6, 2:6] = 1
    known = 1 - hole
    feat, cnext, imputed = (t.numpy() for t in model([x, known]))
    mean = tf.nn.avg_pool2d(x, 3, 1, "SAME").numpy()
    inside, outside = np.repeat(hole > 0, 2, -1), np.repeat(hole == 0, 2, -1)
    np.testing.assert_allclose(imputed[outside], x.numpy()[outside], atol=1e-6)  # known: kept
    np.testing.assert_allclose(imputed[inside], mean[inside], atol=1e-6)  # hole: the mean
    conv = model.get_layer("i_feature")
    np.testing.assert_allclose(feat, np.clip(conv(imputed).numpy(), 0, 6), atol=1e-5)
    assert cnext.shape == (1, 8, 8, 1) and 0 < cnext.min() and cnext.max() < 1  # sigmoid
    # The certainty path costs one one-channel convolution: 3·3·1 + 1 parameters.
    assert model.get_layer("i_certainty").count_params() == 10


def test_imputed_unmask_is_smaller_than_gated_and_converts_to_int8(tmp_path):
    from tfface.export.convert import convert_model, fidelity_batch, representative_inputs
    from tfface.export.quantize import QuantizationConfig

    sizes = {}
    one = {"boxes": 1.0}  # calibration data: one occlusion is enough (and traces in 0.3 s)
    for conv in ("gated", "imputed"):
        cfg = resolve("unmask", "tiny", {"model": {"params": {"conv": conv}},
                                         "data": {"occlusions": one, "eval_occlusions": one}})
        sizes[conv] = get_arch("unmask").build_generator(cfg).count_params()
    # A gated convolution doubles each convolution; the imputed one adds k² + 1.
    assert sizes["imputed"] < 0.7 * sizes["gated"]
    gen = get_arch("unmask").build_generator(cfg)
    x = tf.random.stateless_uniform((2, 32, 32, 3), seed=(7, 8), minval=-1, maxval=1)
    prob, _, refined, restored = (t.numpy() for t in stage_model(gen)(x))
    hole3 = np.repeat(prob > 0.5, 3, axis=-1)
    np.testing.assert_array_equal(restored[~hole3], x.numpy()[~hole3])
    np.testing.assert_allclose(restored[hole3], refined[hole3], atol=1e-6)
    # The 0/1 mask (CAST) and the layers that compose with it stay float, as for the gated
    # network; every imputation, certainty and feature op is int8.
    mask_layers = get_arch("unmask").int8_keep_float(cfg)
    assert mask_layers == ["mask_hard", "known_pixels", "certainty", "coarse_in", "refine_base",
                           "refine_in", "restored"]
    res = convert_model(gen, cfg, QuantizationConfig.for_int8().with_selection(
        mask_layers), str(tmp_path), representative=representative_inputs(cfg, 100),
        check_batch=fidelity_batch(cfg, 4))
    ops = res.card["ops"]
    assert set(ops["float_ops"]) == {"CAST", "SUB", "MUL", "ADD", "CONCATENATION"}
    # 11: the composite's last ADD (it writes the output, so it is named after the
    # signature, not the layer) is float too, so the kept pixels are not rounded.
    assert len(ops["float_ops"]) == 11 and ops["counts"]["AVERAGE_POOL_2D"] == 22
    assert ops["float_ops"][-1] == "ADD"
    # Untrained: the random segmenter's probabilities sit near 0.5, so quantization flips
    # some mask pixels (the gated network measured 21.3 dB the same way, this one 25.4).
    assert res.card["fidelity"]["psnr_db_vs_keras"] > 20


def test_unmask_changes_only_pixels_inside_the_predicted_mask():
    cfg = resolve("unmask", "tiny")
    gen = get_arch("unmask").build_generator(cfg)
    assert [t.name.split(":")[0] for t in gen.inputs] == ["occluded"]  # no mask input
    x = tf.random.stateless_uniform((2, 32, 32, 3), seed=(7, 8), minval=-1, maxval=1)
    prob, coarse, refined, restored = (t.numpy() for t in stage_model(gen)(x))
    hole = prob > 0.5
    assert 0 < hole.mean() < 1  # an untrained segmenter predicts some of each
    hole3 = np.repeat(hole, 3, axis=-1)
    np.testing.assert_array_equal(restored[~hole3], x.numpy()[~hole3])
    np.testing.assert_allclose(restored[hole3], refined[hole3], atol=1e-6)
    np.testing.assert_array_equal(gen(x).numpy(), restored)


def test_hard_mask_threshold_and_straight_through_gradient():
    p = tf.constant([[0.1, 0.5, 0.5001, 0.9]])
    layer = HardMask()
    np.testing.assert_array_equal(layer(p).numpy(), [[0, 0, 1, 1]])
    with tf.GradientTape() as tape:
        tape.watch(p)
        y = layer(p, training=True)
        total = tf.reduce_sum(y * tf.constant([[1.0, 2.0, 3.0, 4.0]]))
    np.testing.assert_array_equal(y.numpy(), [[0, 0, 1, 1]])
    np.testing.assert_array_equal(tape.gradient(total, p).numpy(), [[1, 2, 3, 4]])


def test_mask_scores_and_dice():
    t = np.zeros((1, 4, 4, 1), np.float32)
    t[0, :2, :2] = 1.0  # 4 hole pixels
    p = np.zeros_like(t)
    p[0, :2, :3] = 0.9  # 6 predicted, 4 of them right
    acc, iou = mask_scores(tf.constant(t), tf.constant(p))
    assert float(acc[0]) == pytest.approx(14 / 16)
    assert float(iou[0]) == pytest.approx(4 / 6)
    assert float(losses.dice_loss(t, t)) == pytest.approx(0.0)
    assert float(losses.dice_loss(t, np.zeros_like(t))) == pytest.approx(1 - 1 / 5)
    _, iou_empty = mask_scores(tf.zeros((1, 4, 4, 1)), tf.zeros((1, 4, 4, 1)))
    assert float(iou_empty[0]) == 1.0
    # pooled over the batch (the segmenter's training log): one intersection over one
    # union, not the mean of the images' IoUs (here 4/6 and 1)
    both = np.concatenate([t, t]), np.concatenate([p, t])
    acc, iou = mask_scores(*both, per_image=False)
    assert float(acc) == pytest.approx(30 / 32) and float(iou) == pytest.approx(8 / 10)
    assert np.allclose(mask_scores(*both)[1], [4 / 6, 1.0])


def test_nearest_upsample_matches_keras_and_its_gradient_compiles_under_xla():
    """unmask's ×2 upsampling: Keras' nearest resize forward, a gradient XLA compiles
    (UpSampling2D's ResizeNearestNeighborGrad has no XLA kernel: --jit-compile failed)."""
    from tfface.models.layers import NearestUpsample

    x = tf.random.stateless_normal([2, 5, 6, 3], seed=[1, 2])
    w = tf.random.stateless_normal([2, 10, 12, 3], seed=[3, 4])
    ours, ref = NearestUpsample(2), keras.layers.UpSampling2D(2)

    def loss_grad(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * w)
        return y, tape.gradient(loss, x)

    (y1, g1), (y2, g2) = loss_grad(ours), loss_grad(ref)
    assert y1.shape == (2, 10, 12, 3)
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    np.testing.assert_allclose(g1.numpy(), g2.numpy(), rtol=1e-5, atol=1e-5)
    g_xla = tf.function(lambda: loss_grad(ours)[1], jit_compile=True)()
    np.testing.assert_allclose(g_xla.numpy(), g2.numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(tf.errors.OpError, match="ResizeNearestNeighborGrad"):
        tf.function(lambda: loss_grad(ref)[1], jit_compile=True)()
    restored = NearestUpsample.from_config(ours.get_config())
    assert restored.size == (2, 2) and restored.interpolation == "nearest"
