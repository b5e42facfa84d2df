"""LR synthesis: sizes, monotone effects, determinism (eager vs Dataset.map), ranges."""

from __future__ import annotations

import numpy as np
import pytest

import tfface  # noqa: F401  (before tensorflow: selects tf_keras)
import tensorflow as tf

from tfface.config import Config, DataConfig
from tfface.data import degrade as deg
from tfface.data import pipeline
from tfface.data.sources import render_synthetic_face

SEED = tf.constant([7, 11], tf.int64)


@pytest.fixture(scope="module")
def face():
    img, _ = render_synthetic_face(1234, 3, 96, 0)
    return img  # uint8 [96, 96, 3]


def psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def data_cfg(**kw) -> DataConfig:
    d = DataConfig()
    d.image_size = 96
    for k, v in kw.items():
        setattr(d, k, v)
    return d


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("method", deg.DOWNSCALE_METHODS)
def test_downscale_sizes_and_range(face, scale, method):
    lr = deg.downscale(face, scale, method).numpy()
    assert lr.shape == (96 // scale, 96 // scale, 3) and lr.dtype == np.float32
    assert lr.min() >= 0 and lr.max() <= 255
    # every method is a low-pass: close to the block mean
    blocks = face.reshape(96 // scale, scale, 96 // scale, scale, 3).mean((1, 3))
    assert psnr(lr, blocks) > (100 if method == "area" else 25)


def test_kernels_are_normalized_and_shaped():
    iso = deg.gaussian_kernel(2.0).numpy()
    assert iso.shape == (21, 21) and abs(iso.sum() - 1) < 1e-5
    np.testing.assert_allclose(iso, iso.T, atol=1e-7)
    aniso = deg.gaussian_kernel(4.0, 1.0, 0.0).numpy()
    assert aniso[10, :].std() > aniso[:, 10].std()  # wide along x
    small = deg.gaussian_kernel(3.0, kernel_size=7).numpy()
    assert small[:7].sum() == 0 and abs(small.sum() - 1) < 1e-5
    sinc = deg.sinc_kernel(np.pi / 3, kernel_size=13).numpy()
    assert abs(sinc.sum() - 1) < 1e-5 and sinc.min() < 0  # ringing lobes


def test_blur_matches_cropped_kernel_and_is_monotone(face):
    x = tf.cast(face, tf.float32)
    k = deg.gaussian_kernel(1.0, kernel_size=7)
    full = deg.blur(x, k).numpy()
    fast = deg.blur(x, k, tf.constant(7)).numpy()
    np.testing.assert_allclose(full, fast, atol=1e-3)
    scores = [psnr(deg.blur(x, deg.gaussian_kernel(s)).numpy(), face) for s in (0.5, 1.0, 2.0, 3.0)]
    assert scores == sorted(scores, reverse=True), scores
    aniso = [psnr(deg.blur(x, deg.gaussian_kernel(s, 0.5, 0.7)).numpy(), face) for s in (1, 2, 4)]
    assert aniso == sorted(aniso, reverse=True), aniso


@pytest.mark.parametrize("gray", [False, True])
def test_noise_is_monotone(face, gray):
    x = tf.cast(face, tf.float32)
    g = [psnr(deg.add_gaussian_noise(x, SEED, s, gray), face) for s in (2, 8, 20, 30)]
    assert g == sorted(g, reverse=True), g
    p = [psnr(deg.add_poisson_noise(x, SEED, s, gray), face) for s in (0.1, 0.5, 1.5, 3.0)]
    assert p == sorted(p, reverse=True), p
    out = deg.add_gaussian_noise(x, SEED, 30.0, gray).numpy()
    assert out.min() >= 0 and out.max() <= 255 and out.dtype == np.float32
    diff = deg.add_gaussian_noise(x, SEED, 4.0, gray).numpy() - face
    interior = (face > 40) & (face < 215)  # away from clipping
    same = np.allclose(diff[..., 0][interior.all(-1)], diff[..., 1][interior.all(-1)], atol=1e-3)
    assert same == gray


def test_jpeg_is_monotone(face):
    q = [psnr(deg.jpeg(face, quality), face) for quality in (95, 70, 40, 10)]
    assert q == sorted(q, reverse=True), q
    out = deg.jpeg(tf.cast(face, tf.float32), tf.constant(50)).numpy()
    assert out.shape == face.shape and np.all(out == np.round(out))


def test_degrade_monotone_through_options(face):
    def score(**opts):
        base = {"blur_prob": 0.0, "noise_prob": 0.0, "jpeg_prob": 0.0}
        d = data_cfg(scale=2, degradation="classic", degradation_options={**base, **opts})
        lr = deg.degrade(face, SEED, d).numpy()
        return psnr(deg.upscale(lr, 96).numpy(), face)

    blur = [score(blur_prob=1.0, blur_sigma=(s, s), kernel_prob={"iso": 1}) for s in (0.5, 1.5, 3)]
    noise = [score(noise_prob=1.0, gaussian_noise_prob=1.0, noise_range=(s, s)) for s in (2, 10, 30)]
    jpg = [score(jpeg_prob=1.0, jpeg_range=(q, q)) for q in (95, 50, 10)]
    for seq in (blur, noise, jpg):
        assert seq == sorted(seq, reverse=True), seq


@pytest.mark.parametrize("preset", list(deg.PRESETS))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_degrade_size_range_and_eager_equals_map(face, preset, scale):
    d = data_cfg(scale=scale, degradation=preset)
    seeds = tf.constant([[1, 2], [3, 4], [5, 6]], tf.int64)
    eager = np.stack([deg.degrade(face, s, d).numpy() for s in seeds])
    ds = tf.data.Dataset.from_tensor_slices(seeds).map(
        lambda s: deg.degrade(tf.constant(face), s, d), num_parallel_calls=3, deterministic=True
    )
    mapped = np.stack([x.numpy() for x in ds])
    assert eager.shape == (3, 96 // scale, 96 // scale, 3) and eager.dtype == np.float32
    assert eager.min() >= 0 and eager.max() <= 255
    np.testing.assert_array_equal(eager, mapped)
    if preset != "none":
        assert not np.array_equal(eager[0], eager[1])  # the seed matters
    assert np.array_equal(deg.degrade(face, seeds[0], d).numpy(), eager[0])


def test_realesrgan_is_harder_than_none(face):
    clean = np.mean([psnr(deg.upscale(deg.degrade(face, [i, 0], data_cfg(scale=2)), 96), face)
                     for i in range(4)])
    real = np.mean([
        psnr(deg.upscale(deg.degrade(face, [i, 0], data_cfg(scale=2, degradation="realesrgan")),
                         96), face)
        for i in range(4)
    ])
    assert real < clean - 2, (real, clean)


def test_bad_options():
    with pytest.raises(ValueError, match="valid keys"):
        deg.resolve_options("classic", {"blurr_prob": 1})
    with pytest.raises(ValueError, match="choose one of"):
        deg.resolve_options("bsrgan")
    with pytest.raises(ValueError, match="kernel types"):
        deg.resolve_options("realesrgan", {"kernel_prob": {"box": 1}})
    with pytest.raises(ValueError, match="one of"):
        deg.degrade(np.zeros((96, 96, 3), np.uint8), SEED, data_cfg(scale=5))


def _sr_cfg(**data) -> Config:
    cfg = Config()
    cfg.data.source, cfg.data.image_size, cfg.data.eval_count = "synthetic", 48, 4
    cfg.data.task = "sr"
    for k, v in data.items():
        setattr(cfg.data, k, v)
    cfg.train.batch_size = 2
    return cfg


@pytest.mark.parametrize("degradation", ["none", "realesrgan"])
def test_pipeline_sr_element_with_lr_up(degradation):
    cfg = _sr_cfg(scale=3, lr_up=True, degradation=degradation)
    batches = [{k: v.numpy() for k, v in b.items()} for b in pipeline.make_dataset(cfg, "eval")]
    b = batches[0]
    assert set(b) == {"clean", "lr", "lr_up", "index"}
    assert b["lr"].shape == (2, 16, 16, 3) and b["lr_up"].shape == (2, 48, 48, 3)
    for k in ("clean", "lr", "lr_up"):
        assert b[k].dtype == np.float32 and b[k].min() >= -1 and b[k].max() <= 1
    up = deg.upscale((b["lr"][0] + 1) * 127.5, 48).numpy() / 127.5 - 1
    np.testing.assert_allclose(b["lr_up"][0], up, atol=1e-5)
    again = [{k: v.numpy() for k, v in b.items()} for b in pipeline.make_dataset(cfg, "eval")]
    for x, y in zip(batches, again):
        np.testing.assert_array_equal(x["lr"], y["lr"])


def test_pipeline_sr_validation():
    with pytest.raises(ValueError, match="one of"):
        pipeline.make_dataset(_sr_cfg(scale=8), "train")
    with pytest.raises(ValueError, match="divisible"):
        pipeline.make_dataset(_sr_cfg(scale=3, image_size=64), "train")
    with pytest.raises(ValueError, match="sr_downscale"):
        pipeline.make_dataset(_sr_cfg(sr_downscale="nearest"), "train")
    with pytest.raises(ValueError, match="valid keys"):
        pipeline.make_dataset(_sr_cfg(degradation="classic",
                                      degradation_options={"x": 1}), "train")
