"""The V-Net's resize-convolution decoder (model.params.upsample), the weight surgery that
starts it from a transposed-convolution run, and the critic's blur (model.params.disc_blur)."""

from __future__ import annotations

import numpy as np
import pytest

import tfface  # noqa: F401  (tf_keras switch before TensorFlow)
import tensorflow as tf

from tfface import keras
from tfface.config import ConfigError, resolve
from tfface.models import get_arch
from tfface.models.discriminators import global_local_patch_critic
from tfface.models.layers import PRIOR_LAYER
from tfface.models.vnet import resize_conv_from_transpose
from tfface.rundir import load_init_weights

FAMILY = get_arch("vnet")


def _cfg(**params):
    p = dict(mask_input=True, prefill=True, prefill_method="pyramid", prefill_iterations=2,
             keep_known=True)
    p.update(params)
    return resolve("vnet", "tiny", {"model": {"params": p}})


def _build(cfg, seed=0):
    keras.utils.set_random_seed(seed)
    return FAMILY.build_generator(cfg)


def _signature(model):
    return [(w.name, tuple(w.shape)) for w in model.weights]


def test_the_default_graph_is_the_librarys_transposed_v_net():
    from keras_unet_collection._model_vnet_2d import vnet_2d_base

    cfg = _cfg()
    gen = _build(cfg)
    assert _signature(gen) == _signature(_build(_cfg(upsample="transpose")))
    names = [layer.name for layer in gen.layers]
    assert "vnet_up_0_decode_trans_conv" in names
    assert not any(n.endswith("_decode_resize") or n.endswith("_decode_conv") for n in names)
    # the V-Net part, layer for layer, is vnet_2d_base's own graph
    p = FAMILY.params(cfg)
    x = keras.Input((64, 64, 4))
    ref = keras.Model(x, vnet_2d_base(x, p["filter_num"], res_num_ini=p["res_num_ini"],
                                      res_num_max=p["res_num_max"], activation=p["activation"],
                                      batch_norm=True, pool=False, unpool=False, name="vnet"))
    ours = {(layer.name, type(layer).__name__, tuple(tuple(w.shape) for w in layer.weights))
            for layer in gen.layers if layer.name.startswith("vnet_") and
            layer.name not in ("vnet_in_concat", "vnet_output_conv", "vnet_residual")}
    theirs = {(layer.name, type(layer).__name__, tuple(tuple(w.shape) for w in layer.weights))
              for layer in ref.layers if layer.name.startswith("vnet_")}
    assert ours == theirs


@pytest.mark.parametrize("mode,resize", [("resize_conv", "UpSampling2D"),
                                         ("nearest_conv", "NearestUpsample")])
def test_resize_forms_replace_each_transposed_conv_by_a_resize_and_a_conv(mode, resize):
    base = _build(_cfg())
    gen = _build(_cfg(upsample=mode))
    assert gen.count_params() == base.count_params()
    kinds = {layer.name: type(layer).__name__ for layer in gen.layers}
    assert "Conv2DTranspose" not in kinds.values()
    for level in range(2):  # tiny preset: 3 levels, 2 upsamplings
        assert kinds[f"vnet_up_{level}_decode_resize"] == resize
        assert kinds[f"vnet_up_{level}_decode_conv"] == "Conv2D"
        assert f"vnet_up_{level}_decode_bn" in kinds
    same = {n for n in kinds if "_decode_" not in n}
    assert same == {layer.name for layer in base.layers if "_decode_" not in layer.name}


def test_a_flat_input_gives_a_flat_output_only_without_the_transposed_conv():
    """The checkerboard: with random weights, a constant face comes out of the transposed
    form with a 2-pixel pattern in the middle (its phases read different taps) and out of
    the resize forms flat."""
    params = dict(mask_input=False, prefill=False, keep_known=False)
    flat = np.full((1, 64, 64, 3), 0.2, np.float32)

    def alternation(mode):
        """The output's largest 2-pixel (+1, -1, +1, ...) component down or across the middle
        (the border's zero padding reaches in, but smoothly)."""
        out = _build(_cfg(upsample=mode, **params), seed=3)(flat, training=False).numpy()
        mid, sign = out[0, 16:48, 16:48], (-1.0) ** np.arange(32)
        return max(np.abs((mid * sign[:, None, None]).mean((0, 1))).max(),
                   np.abs((mid * sign[None, :, None]).mean((0, 1))).max())

    assert alternation("transpose") > 3e-3
    assert alternation("resize_conv") < 1e-4
    assert alternation("nearest_conv") < 1e-4


def test_nearest_surgery_is_exact_for_a_transposed_conv_without_a_checkerboard():
    t = np.array([0.5, 1.0, 0.5], np.float32)
    w = np.outer(t, t)[:, :, None, None] * np.array([1.0, -2.0], np.float32)[None, None, :, None]
    z = tf.constant(np.random.default_rng(0).normal(size=(1, 12, 12, 1)), tf.float32)
    y = tf.nn.conv2d_transpose(z, w, (1, 24, 24, 2), 2, "SAME").numpy()
    c = resize_conv_from_transpose(w, "nearest_conv")
    assert c.shape == (3, 3, 1, 2)
    v = tf.nn.conv2d(keras.layers.UpSampling2D(2)(z), c, 1, "SAME").numpy()
    np.testing.assert_allclose(v[:, 2:-2, 2:-2], y[:, 2:-2, 2:-2], atol=1e-5)
    # bilinear: the mean of the four phase sums in the centre tap, nothing elsewhere
    m = resize_conv_from_transpose(w, "resize_conv")
    np.testing.assert_allclose(m[1, 1, 0], w.sum(axis=(0, 1))[:, 0] / 4.0, rtol=1e-6)
    assert np.count_nonzero(m) == 2
    with pytest.raises(ValueError, match="mode must be one of"):
        resize_conv_from_transpose(w, "transpose")
    with pytest.raises(ValueError, match=r"\[3, 3, out, in\]"):
        resize_conv_from_transpose(np.zeros((4, 4, 1, 1)), "nearest_conv")


@pytest.mark.parametrize("mode", ["resize_conv", "nearest_conv"])
def test_init_weights_of_a_transposed_run_start_a_resize_run_close_to_it(tmp_path, mode, capsys):
    old = _build(_cfg(prefill_prior=True), seed=1)
    prior = old.get_layer(PRIOR_LAYER)
    prior.prior.assign(np.full(prior.prior.shape, 0.1, np.float32))
    path = str(tmp_path / "old.weights.h5")
    old.save_weights(path)

    cfg = _cfg(prefill_prior=True, upsample=mode)
    cfg.train.init_weights = path
    gen = _build(cfg, seed=2)
    fresh = _build(cfg, seed=2)
    assert load_init_weights(gen, cfg) == path
    printed = capsys.readouterr().out
    for level in range(2):
        assert (f"Converted vnet_up_{level}_decode_trans_conv (3, 3, " in printed
                and f"to vnet_up_{level}_decode_conv (upsample={mode})" in printed)
        kernel, bias = old.get_layer(f"vnet_up_{level}_decode_trans_conv").get_weights()
        new_kernel, new_bias = gen.get_layer(f"vnet_up_{level}_decode_conv").get_weights()
        np.testing.assert_array_equal(new_kernel, resize_conv_from_transpose(kernel, mode))
        np.testing.assert_array_equal(new_bias, bias)
    for layer in old.layers:  # every other layer, the prior included, as it was
        if layer.weights and "_decode_trans_conv" not in layer.name:
            for a, b in zip(layer.get_weights(), gen.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)

    # on a smooth face with a hole, the surgered model stays near the old one (much
    # nearer than the same graph with its own initial weights)
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    face = np.stack([0.5 * np.sin(3 * xx + 2 * yy), 0.4 * np.cos(2 * xx - yy), 0.3 * xx - 0.2],
                    -1)[None].astype(np.float32)
    mask = np.zeros((1, 64, 64, 1), np.float32)
    mask[:, 20:44, 16:48] = 1.0
    inputs = [face * (1 - mask), mask]
    ref = old(inputs, training=False).numpy()
    err = np.abs(gen(inputs, training=False).numpy() - ref)[mask[..., 0] > 0].mean()
    err_fresh = np.abs(fresh(inputs, training=False).numpy() - ref)[mask[..., 0] > 0].mean()
    assert err < 0.5 * err_fresh


def test_a_resize_run_refuses_weights_of_another_shape(tmp_path):
    other = _build(_cfg(filter_num=[8, 16, 64]))
    path = str(tmp_path / "other.weights.h5")
    other.save_weights(path)
    cfg = _cfg(upsample="resize_conv")
    cfg.train.init_weights = path
    gen = _build(cfg)
    before = [w.copy() for w in gen.get_weights()]
    with pytest.raises(ConfigError, match="does not hold weights of this run's vnet"):
        load_init_weights(gen, cfg)
    for a, b in zip(before, gen.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bad_upsample_and_blur_settings_are_refused():
    with pytest.raises(ConfigError, match="upsample"):
        _cfg(upsample="pixel_shuffle")
    with pytest.raises(ValueError, match="disc_blur=true needs model.params.disc=global_local"):
        FAMILY.build_discriminator(_cfg(disc_blur=True))
    with pytest.raises(ValueError, match="disc_sees_mask=true needs model.params.disc=global"):
        FAMILY.build_discriminator(_cfg(disc_sees_mask=True))


def test_a_critic_that_sees_the_mask_scores_the_same_face_differently_per_hole():
    """The conditional critic's global score depends on where the hole is; the plain
    critic's does not (its mask only weights the local score)."""
    keras.utils.set_random_seed(0)
    cond = FAMILY.build_discriminator(_cfg(disc="global_local", disc_sees_mask=True,
                                           disc_filters=[8, 8, 8]))
    keras.utils.set_random_seed(0)
    plain = FAMILY.build_discriminator(_cfg(disc="global_local", disc_filters=[8, 8, 8]))
    assert "critics_with_mask" in [layer.name for layer in cond.layers]
    assert cond.get_layer("critics_conv0").kernel.shape == (4, 4, 4, 8)
    assert plain.get_layer("critics_conv0").kernel.shape == (4, 4, 3, 8)
    size = cond.inputs[0].shape[1]
    face = tf.constant(np.random.default_rng(1).uniform(-1, 1, (1, size, size, 3)), tf.float32)
    top, bottom = np.zeros((1, size, size, 1), np.float32), np.zeros((1, size, size, 1), np.float32)
    top[:, : size // 2], bottom[:, size // 2:] = 1, 1
    g_plain = [float(plain([face, m])[0, 0]) for m in (top, bottom)]
    g_cond = [float(cond([face, m])[0, 0]) for m in (top, bottom)]
    assert g_plain[0] == pytest.approx(g_plain[1], rel=1e-5)
    assert abs(g_cond[0] - g_cond[1]) > 0.01 * max(abs(g) for g in g_cond)


def test_the_blurred_critic_has_the_same_weights_and_a_smoother_input_gradient():
    plain = global_local_patch_critic(64, (8, 8, 8))
    blurred = global_local_patch_critic(64, (8, 8, 8), blur=True)
    assert [layer.name for layer in blurred.layers if "blur" in layer.name] == [
        "critics_blur1", "critics_blur2"]
    assert _signature(plain) == _signature(blurred)
    blurred.set_weights(plain.get_weights())
    face = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 3)), tf.float32)
    mask = tf.ones((4, 64, 64, 1))

    def period_power(model, period):
        """Power of the local score's input gradient at a vertical period, locked to the grid
        (summed over faces as complex numbers), relative to its total power."""
        with tf.GradientTape() as tape:
            tape.watch(face)
            score = tf.reduce_sum(model([face, mask])[:, 1])
        g = tape.gradient(score, face).numpy().mean(axis=(2, 3))  # rows
        spec = np.abs(np.fft.rfft(g - g.mean(1, keepdims=True), axis=1).sum(0)) ** 2
        return spec[64 // period] / spec[1:].sum()

    for period in (4, 8):  # the second and third convolutions' strides
        assert period_power(blurred, period) < 0.5 * period_power(plain, period)


def test_the_converted_convs_are_then_fitted_on_training_faces(tmp_path, capsys):
    from tfface.data.sources import make_source
    from tfface.rundir import fit_converted_upsample

    old = _build(_cfg(), seed=1)
    path = str(tmp_path / "old.weights.h5")
    old.save_weights(path)
    cfg = _cfg(upsample="resize_conv")
    cfg.data.occlusions = cfg.data.eval_occlusions = {"boxes": 1.0}
    cfg.train.init_weights = path
    analytic = _build(cfg)
    load_init_weights(analytic, cfg)
    gen = _build(cfg)
    capsys.readouterr()
    source = make_source(cfg.data)
    load_init_weights(gen, cfg, fit_source=source)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Fitted")]
    assert len(lines) == 2
    for line in lines:  # "... error B -> A of its output's mean square."
        before, after = (float(v) for v in line.split("error ")[1].split(" of")[0].split(" -> "))
        assert after < before
    changed = [not np.array_equal(a, b) for a, b in zip(
        analytic.get_layer("vnet_up_0_decode_conv").get_weights(),
        gen.get_layer("vnet_up_0_decode_conv").get_weights())]
    assert all(changed)
    for layer in analytic.layers:  # nothing else moves
        if layer.weights and "_decode_conv" not in layer.name:
            for a, b in zip(layer.get_weights(), gen.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)
    plain = _cfg()
    plain.train.init_weights = path
    assert not fit_converted_upsample(_build(plain), plain, source)


def test_the_critics_penalty_step_prints_no_grappler_error(capfd):
    """The WGAN-GP penalty differentiates the critic twice; with Keras' LeakyReLU,
    grappler's remapper fused Conv2D + BiasAdd + LeakyRelu and printed ``E0000 ...
    remapper failed`` on the first compiled step (runs G and H). LeakyMax gives the same
    values and nothing is printed."""
    from tfface.models.layers import LeakyMax

    critic = global_local_patch_critic(32, (8, 16, 16, 16), blur=True)
    x = tf.random.stateless_uniform([2, 32, 32, 3], [1, 2], -1, 1)
    mask = tf.ones([2, 32, 32, 1])

    @tf.function
    def penalty_step(x):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                s = tf.reduce_sum(critic([x, mask]))
            g = inner.gradient(s, x)
            gp = tf.reduce_mean(tf.square(tf.sqrt(tf.reduce_sum(g * g, [1, 2, 3])) - 1.0))
        return gp, outer.gradient(gp, critic.trainable_variables)

    gp, grads = penalty_step(x)
    # the kernels get a gradient (the biases do not: the input gradient of a piecewise
    # linear critic does not depend on them)
    assert np.isfinite(float(gp)) and sum(g is not None for g in grads) >= 4
    assert "remapper failed" not in capfd.readouterr().err
    v = tf.constant([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(LeakyMax(0.2)(v), keras.layers.LeakyReLU(0.2)(v))
