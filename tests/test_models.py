"""Architecture registry and the V-Net family."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfface.config import ConfigError, resolve
from tfface.models import ARCHS, get_arch
from tfface.models.family import INPUT


def test_get_arch_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: .*vnet"):
        get_arch("nope")


def test_vnet_paper_preset_has_published_parameter_count():
    # filter_num [64,128,256,512,512], res 2/2, BN, strided conv / transposed conv,
    # 256x256x3; the tanh head adds no parameters.
    cfg = resolve("vnet", "paper")
    gen = get_arch("vnet").build_generator(cfg)
    assert gen.count_params() == 26_062_147
    assert gen.input_shape == (None, 256, 256, 3)
    assert gen.output_shape == (None, 256, 256, 3)
    assert gen.inputs[0].name.startswith("occluded")
    assert gen.output_names == ["restored"]


def _tiny_inputs(cfg, n=2):
    s = cfg.data.image_size
    if cfg.data.task == "sr":
        s //= cfg.data.scale
    return tf.random.stateless_uniform((n, s, s, 3), seed=(1, 2), minval=-1, maxval=1)


def _judge(family, cfg, disc, image, x):
    cond = family.disc_condition(cfg) if callable(family.disc_condition) else family.disc_condition
    if cond == "mask":  # critics that read the hole
        s = image.shape[1]
        mask = np.zeros((image.shape[0], s, s, 1), np.float32)
        mask[:, s // 4 : s // 2, s // 3 : s // 2] = 1.0
        return disc([image, tf.constant(mask)], training=True)
    return disc([image, x] if cond == INPUT else image, training=True)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_tiny_variant_builds_and_every_weight_gets_a_gradient(arch):
    family = get_arch(arch)
    cfg = resolve(arch, "tiny")
    assert cfg.data.task == family.task
    gen = family.build_generator(cfg)
    disc = family.build_discriminator(cfg)
    s = cfg.data.image_size
    x = _tiny_inputs(cfg)
    with tf.GradientTape(persistent=True) as tape:
        y = gen(x, training=True)
        logits = _judge(family, cfg, disc, y, x)
        g_obj = tf.reduce_mean(tf.square(y)) + tf.reduce_mean(logits)
    assert y.shape == (2, s, s, 3)
    assert np.all(np.isfinite(y.numpy()))
    assert float(tf.reduce_max(tf.abs(y))) <= 1.0
    assert gen.output_names == ["restored"]
    assert gen.inputs[0].name.startswith("lr" if family.task == "sr" else "occluded")
    for model in (gen, disc):
        grads = tape.gradient(g_obj, model.trainable_variables)
        missing = [v.name for v, g in zip(model.trainable_variables, grads) if g is None]
        assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("arch, preset, gen_params, disc_params, lr_size, hr_size", [
    # U-Net 256 (8 levels, 1x1 bottleneck) + conditional 70x70 PatchGAN on 6 channels.
    ("pix2pix", "paper", 54_424_387, 2_770_497, 256, 256),
    ("pix2pix", "tiny", 114_507, 3_145, 32, 32),
    # SRResNet B=16, F=64, x4 (24 -> 96) and the SRGAN discriminator at 96 px.
    ("srgan", "paper", 1_554_883, 23_567_361, 24, 96),
    ("srgan", "face", 1_407_107, 13_081_601, 32, 64),  # x2 (32 -> 64)
    ("srgan", "tiny", 38_355, 82_561, 8, 32),
])
def test_pinned_parameter_counts(arch, preset, gen_params, disc_params, lr_size, hr_size):
    family = get_arch(arch)
    cfg = resolve(arch, preset)
    gen, disc = family.build_generator(cfg), family.build_discriminator(cfg)
    assert (gen.count_params(), disc.count_params()) == (gen_params, disc_params)
    assert gen.input_shape[1:3] == (lr_size, lr_size)
    assert gen.output_shape[1:3] == (hr_size, hr_size)


def test_pix2pix_paper_generator_is_the_canonical_unet():
    cfg = resolve("pix2pix", "paper")
    gen = get_arch("pix2pix").build_generator(cfg)
    names = [layer.name for layer in gen.layers]
    assert sum(n.endswith("_conv") and n.startswith("down") for n in names) == 8
    assert sum(n.endswith("_dropout") for n in names) == 3
    assert gen.get_layer("down7_lrelu").output_shape == (None, 1, 1, 512)
    assert gen.get_layer("restored").get_config()["activation"] == "tanh"
    t = cfg.train
    assert (t.pixel_loss, t.pixel_weight, t.adv_weight, t.g_lr, t.d_lr, t.beta_1) == (
        "l1", 100.0, 1.0, 2e-4, 2e-4, 0.5)


def test_pix2pix_depth_follows_the_image_size():
    from tfface.models.pix2pix import unet_depth

    assert [unet_depth(s) for s in (32, 64, 256, 96)] == [5, 6, 8, 5]
    with pytest.raises(ValueError, match="divisible"):
        unet_depth(64, depth=7)


def test_srgan_scales_and_discriminator_sizes():
    family = get_arch("srgan")
    for scale, hr in ((2, 32), (4, 64), (8, 64)):
        cfg = resolve("srgan", "tiny")
        # Set directly: x8 is a model-only check (the data pipeline, and so the config
        # validation, stops at x4).
        cfg.data.scale, cfg.data.image_size = scale, hr
        gen, disc = family.build_generator(cfg), family.build_discriminator(cfg)
        assert gen.input_shape == (None, hr // scale, hr // scale, 3)
        assert gen.output_shape == (None, hr, hr, 3)
        assert disc.output_shape == (None, 1)
    with pytest.raises(ValueError, match=r"data\.scale must be one of \(2, 4\) for srgan"):
        resolve("srgan", "tiny", {"data": {"scale": 3, "image_size": 48}})
    cfg.data.scale, cfg.data.image_size = 3, 48
    with pytest.raises(ValueError, match="powers of two"):
        family.build_generator(cfg)
    cfg = resolve("srgan", "tiny", {"model": {"params": {"disc_head": "gap"}},
                                    "data": {"image_size": 64}})
    assert family.build_discriminator(cfg).count_params() < 82_561


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_save_load_gives_identical_output(arch, tmp_path):
    from tfface import keras

    family = get_arch(arch)
    cfg = resolve(arch, "tiny")
    gen = family.build_generator(cfg)
    x = _tiny_inputs(cfg)
    path = str(tmp_path / "gen.keras")
    gen.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(gen(x, training=False).numpy(),
                                  loaded(x, training=False).numpy())
    # Weights into a freshly built model (what load_generator does).
    fresh = family.build_generator(cfg)
    gen.save_weights(str(tmp_path / "g.weights.h5"))
    fresh.load_weights(str(tmp_path / "g.weights.h5"))
    np.testing.assert_array_equal(gen(x).numpy(), fresh(x).numpy())


def test_no_lambda_layers_and_pixel_shuffle_serializes():
    from tfface import keras
    from tfface.models.layers import PixelShuffle

    for arch in ARCHS:
        gen = get_arch(arch).build_generator(resolve(arch, "tiny"))
        assert not any(isinstance(layer, keras.layers.Lambda) for layer in gen.layers), arch
    layer = PixelShuffle(2, name="ps")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, PixelShuffle) and clone.block_size == 2
    x = tf.reshape(tf.range(16.0), (1, 1, 1, 16))
    assert layer(x).shape == (1, 2, 2, 4)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ConfigError, match="choose one of: paper, demo, mobile, tiny"):
        resolve("vnet", "huge")


def test_image_size_must_fit_the_depth():
    cfg = resolve("vnet", "tiny")
    cfg.model.params["filter_num"] = [8, 16, 32, 64]  # 4 levels: the size must divide by 8
    cfg.data.image_size = 76
    with pytest.raises(ValueError, match="divisible by 8"):
        get_arch("vnet").build_generator(cfg)


@pytest.mark.parametrize("kwargs", [{}, {"method": "pyramid", "iterations": 8, "levels": 3}])
def test_hole_fill_keeps_known_pixels_and_interpolates_the_hole(kwargs):
    from tfface.models.layers import HoleFill

    s = 32
    ramp = np.tile(np.linspace(-0.8, 0.8, s, dtype=np.float32), (s, 1))
    clean = np.repeat(ramp[None, :, :, None], 3, -1)
    mask = np.zeros((1, s, s, 1), np.float32)
    mask[:, 10:22, 12:15] = 1.0  # a 3 px wide vertical line (CelebA-C like)
    mask[:, 2:4, 2:30] = 1.0
    occluded = clean * (1 - mask) + mask * -1.0
    out = HoleFill(**kwargs)([occluded, mask]).numpy()
    known = mask[..., 0] == 0
    np.testing.assert_array_equal(out[0][known[0]], occluded[0][known[0]])
    hole_err = np.abs(out - clean)[0][~known[0]]
    assert hole_err.max() < 0.06, hole_err.max()  # -1 fill vs ramp: was up to 1.8
    clone = HoleFill.from_config(HoleFill(**{**kwargs, "iterations": 5}).get_config())
    assert (clone.iterations, clone.method) == (5, kwargs.get("method", "windows"))
    np.testing.assert_array_equal(clone([occluded, mask]).numpy(),
                                  HoleFill(**{**kwargs, "iterations": 5})([occluded, mask]).numpy())


def test_hole_fill_pyramid_reaches_the_middle_of_a_large_hole():
    from tfface.models.layers import HoleFill

    s = 64
    ramp = np.tile(np.linspace(-0.8, 0.8, s, dtype=np.float32), (s, 1))
    clean = np.repeat(ramp[None, :, :, None], 3, -1)
    mask = np.zeros((1, s, s, 1), np.float32)
    mask[:, 16:48, 16:48] = 1.0  # a quarter of the face
    occluded = clean * (1 - mask) - mask
    hole = mask[0, ..., 0] > 0
    pyr = HoleFill(8, method="pyramid", levels=4)([occluded, mask]).numpy()
    err = np.abs(pyr - clean)[0][hole]
    assert err.mean() < 0.08, err.mean()  # the -1 fill is 0.8 off on average
    assert pyr[0, 32, 20, 0] < pyr[0, 32, 44, 0]  # the ramp's direction survives
    with pytest.raises(ValueError, match="method must be one of"):
        HoleFill(method="telea")


@pytest.mark.parametrize("arch", ["vnet", "pix2pix", "wgan_gl"])
def test_prefill_variant_starts_at_the_fill_and_trains_everywhere(arch, tmp_path):
    from tfface import keras
    from tfface.models.layers import HoleFill

    params = {"mask_input": True, "prefill": True}
    cfg = resolve(arch, "tiny", {"model": {"params": params}})
    family = get_arch(arch)
    gen = family.build_generator(cfg)
    assert [i.name for i in gen.inputs] == ["occluded", "mask"]
    image = _tiny_inputs(cfg)
    size = cfg.data.image_size
    mask = tf.cast(tf.random.stateless_uniform((2, size, size, 1), seed=(3, 4)) > 0.8, tf.float32)
    x = [image * (1 - mask), mask]
    base = HoleFill(family.params(cfg)["prefill_iterations"],
                    method=family.params(cfg)["prefill_method"])(x).numpy()
    with tf.GradientTape() as tape:
        y = gen(x, training=True)
        loss = tf.reduce_mean(tf.abs(y - 0.3))
    grads = tape.gradient(loss, gen.trainable_variables)
    missing = [v.name for v, g in zip(gen.trainable_variables, grads)
               if g is None or not np.any(g.numpy())]
    assert not missing, missing
    # Residual initialised near zero: the untrained model is the classical fill.
    assert np.abs(gen(x).numpy() - np.clip(base, -1, 1)).max() < 0.05
    # ... which its int8 export keeps in float (tflite.convert's hint names it).
    assert family.int8_keep_float(cfg) == ["hole_fill"]
    gen.save(str(tmp_path / "g.keras"))
    loaded = keras.models.load_model(str(tmp_path / "g.keras"), safe_mode=True)
    np.testing.assert_array_equal(gen(x).numpy(), loaded(x).numpy())
    with pytest.raises(ValueError, match="needs mask_input"):
        family.build_generator(resolve(arch, "tiny", {"model": {"params": {"prefill": True}}}))


@pytest.mark.parametrize("arch", ["vnet", "pix2pix"])
def test_keep_known_file_returns_the_input_outside_the_hole_bit_for_bit(arch, tmp_path):
    from tfface.lite import LiteRunner
    from tfface.export.convert import convert_model, fidelity_batch, representative_inputs
    from tfface.export.quantize import QuantizationConfig

    params = {"mask_input": True, "prefill": True}
    # Calibration and check data with one occlusion (boxes): the default mixture costs
    # about 13 s of graph tracing per dataset built, and this test is about the kept
    # pixels, which any hole shows.
    one = {"boxes": 1.0}
    data = {"occlusions": one, "eval_occlusions": one}
    cfg = resolve(arch, "tiny", {"model": {"params": params}, "data": data})
    cfg_kk = resolve(arch, "tiny", {"model": {"params": {**params, "keep_known": True}},
                                    "data": data})
    family = get_arch(arch)
    gen, gen_kk = family.build_generator(cfg), family.build_generator(cfg_kk)
    # Parameter-free: the weights of a model trained without it fit it as they are.
    gen_kk.set_weights(gen.get_weights())
    assert gen_kk.layers[-1].name == gen.layers[-1].name == "restored"  # the signature key
    assert family.int8_keep_float(cfg_kk) == ["hole_fill", "restored"]
    batch = fidelity_batch(cfg, 4)
    keep = np.repeat(batch["mask"] < 0.5, 3, axis=-1)
    assert 0.2 < keep.mean() < 0.995  # the batch has holes and kept pixels
    rep = representative_inputs(cfg, 100)
    outside = {}
    for name, c, g in (("plain", cfg, gen), ("keep_known", cfg_kk, gen_kk)):
        qcfg = QuantizationConfig.for_int8().with_selection(family.int8_keep_float(c))
        res = convert_model(g, c, qcfg, str(tmp_path / name), representative=rep,
                            check_batch=batch)
        got = LiteRunner(res.path).run_named(batch)
        outside[name] = np.abs(got - batch["occluded"])[keep].max()
        inside = np.abs(got - g.predict([batch["occluded"], batch["mask"]], verbose=0))[~keep]
        assert inside.max() < 0.1  # the hole is still the int8 network's output
    # Plain int8 rounds the kept pixels to the output's int8 steps; keep_known does not.
    assert outside["plain"] > 1e-3
    assert outside["keep_known"] < 1e-6
    with pytest.raises(ValueError, match="keep_known=True needs mask_input"):
        family.build_generator(resolve(arch, "tiny", {"model": {"params": {"keep_known": True}}}))


def test_srgan_upsample_skip_starts_at_the_interpolated_face():
    cfg = resolve("srgan", "tiny", {"model": {"params": {"upsample_skip": "bilinear"}}})
    gen = get_arch("srgan").build_generator(cfg)
    lr = _tiny_inputs(cfg) * 0.9
    up = tf.image.resize(lr, (32, 32), method="bilinear")
    out = gen(lr).numpy()
    assert out.shape == (2, 32, 32, 3)
    assert np.abs(out - up.numpy()).max() < 0.05
    with pytest.raises(ValueError, match="upsample_skip"):
        get_arch("srgan").build_generator(
            resolve("srgan", "tiny", {"model": {"params": {"upsample_skip": "lanczos"}}}))


def test_srgan_oversample_is_the_x4_network_shrunk_by_area():
    """A x2 generator with oversample 2 takes a x4 generator's weights unchanged and gives
    its output average-pooled 2x2 (INTER_AREA for a factor of 2)."""
    over = {"model": {"params": {"upsample_skip": "bicubic", "oversample": 2}}}
    x4 = get_arch("srgan").build_generator(
        resolve("srgan", "tiny", {"model": {"params": {"upsample_skip": "bicubic"}}}))
    x2 = get_arch("srgan").build_generator(
        resolve("srgan", "tiny", {**over, "data": {"image_size": 16, "scale": 2}}))
    x4.get_layer("output_conv").set_weights(  # not the near-zero start: a real residual
        [w + 0.05 for w in x4.get_layer("output_conv").get_weights()])
    x2.set_weights(x4.get_weights())
    lr = tf.random.stateless_uniform((2, 8, 8, 3), seed=(1, 2), minval=-0.9, maxval=0.9)
    want = tf.nn.avg_pool2d(x4(lr), 2, 2, "VALID").numpy()
    got = x2(lr).numpy()
    assert got.shape == (2, 16, 16, 3) and np.abs(want - x4(lr).numpy()[:, ::2, ::2]).max() > 0.01
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_bicubic_upsample_layer_matches_tf_image_resize_inside_the_border():
    from tfface import keras
    from tfface.models.layers import BicubicUpsample

    lr = tf.random.stateless_uniform((2, 12, 12, 3), seed=(5, 6), minval=-1, maxval=1)
    for scale in (2, 4):
        up = BicubicUpsample(scale)(lr).numpy()
        ref = tf.image.resize(lr, (12 * scale, 12 * scale), method="bicubic").numpy()
        assert up.shape == ref.shape
        b = 2 * scale  # the 2 border input pixels are mirrored instead of renormalised
        np.testing.assert_allclose(up[:, b:-b, b:-b], ref[:, b:-b, b:-b], atol=1e-5)
    layer = keras.layers.deserialize(keras.layers.serialize(BicubicUpsample(4)))
    assert layer.scale == 4 and not layer.trainable_weights
