"""dlib's face ResNet rebuilt in Keras (tfface.identity.dlib_resnet): the same descriptors as dlib
on a real face (``skimage.data.astronaut()``, public domain), the same chip, a loss with a
gradient, and a parser that refuses anything but the one file it knows."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dlib")
pytest.importorskip("skimage")

import tensorflow as tf  # noqa: E402

from conftest import astronaut_crop, tiny_config  # noqa: E402
from tfface.identity import dlib_resnet as D  # noqa: E402
from tfface.identity import verify as ident  # noqa: E402


@pytest.fixture(scope="module")
def dat_bytes():
    with open(ident.packaged_dlib_models()["descriptor"], "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def model(dat_bytes):
    return D.build_model(D.parse(dat_bytes))


@pytest.fixture(scope="module")
def faces():
    from tfface.data.sources import render_synthetic_face

    return np.stack([astronaut_crop(), astronaut_crop(dx=3, dy=-2), astronaut_crop(angle=8.0),
                     render_synthetic_face(0, 3, 128)[0]])


def test_keras_network_gives_dlibs_descriptors(model, faces):
    emb = ident.DlibEmbedder()
    chips = np.stack(emb.chips(faces))
    want = np.stack([np.asarray(v) for v in emb._descriptor.compute_face_descriptor(list(chips))])
    got = model(chips.astype(np.float32)).numpy()
    assert got.shape == (4, 128)
    # The same network to float rounding: dlib's own distance between these faces is >= 0.1.
    assert np.abs(got - want).max() < 1e-4, np.abs(got - want).max()
    assert model.count_params() == 5_607_488 and not model.trainable_weights


def test_chip_maps_cut_dlibs_chip_and_descriptor(model, faces):
    emb = ident.DlibEmbedder()
    chips = np.stack(emb.chips(faces)).astype(np.float32)
    maps = D.ChipAligner().transforms(faces)
    assert maps.shape == (4, 8) and np.all(maps[:, 6:] == 0)
    ours = D.resample_chips(faces.astype(np.float32), maps).numpy()
    # dlib rounds its bilinear chip to uint8: within one grey level of ours.
    assert np.abs(ours - chips).mean() < 0.7 and np.abs(ours - chips).max() <= 1.5
    d = np.linalg.norm(model(ours).numpy() - model(chips).numpy(), axis=1)
    assert d.max() < 0.02, d  # dlib's same-person distance is 0.6


def test_identity_loss_is_zero_for_the_face_itself_and_pulls_a_fill_back(faces):
    fn = D.identity_loss_fn(jitter=None)  # the same views every call, so steps compare
    target = tf.constant(faces[:2].astype(np.float32) / 127.5 - 1.0)
    assert abs(float(fn(target, target))) < 1e-6
    # Another person's face: beyond dlib's same-person distance (a loss above 1).
    other = tf.constant(faces[[3, 3]].astype(np.float32) / 127.5 - 1.0)
    assert float(fn(target, other)) > 1.0
    # Grey over the eyes and nose: a gradient on the restoration, none needed elsewhere.
    hole = np.zeros((1, 128, 128, 1), np.float32)
    hole[:, 40:80, 30:98] = 1
    pred = tf.Variable(target * (1 - hole))
    with tf.GradientTape() as tape:
        loss = fn(target, pred)
    g = tape.gradient(loss, pred).numpy()
    assert float(loss) > 0.01 and np.isfinite(g).all()
    assert np.abs(g[:, 40:80, 30:98]).mean() > 1e-6
    # A small step down the gradient inside the hole makes dlib's distance smaller.
    step = pred - 0.02 * g * hole / (np.abs(g).max() + 1e-12)
    assert float(fn(target, step)) < 0.99 * float(loss)


def test_blur_takes_away_what_fine_stripes_do_to_the_descriptor(model, faces):
    # The pattern a generator painted into holes when trained against the plain network.
    target = tf.constant(faces[:3].astype(np.float32) / 127.5 - 1.0)
    rows = np.arange(128)[:, None] % 3 == 0
    stripes = np.where(rows, 0.15, -0.075).astype(np.float32)[None, :, :, None] * np.ones((1, 1, 128, 3))
    hole = np.zeros((1, 128, 128, 1), np.float32)
    hole[:, 64:100, 35:93] = 1
    pred = target + tf.constant((stripes * hole).astype(np.float32))
    plain = float(D.identity_loss_fn(model, blur_sigma=0, jitter=None)(target, pred))
    blurred = float(D.identity_loss_fn(model, jitter=None)(target, pred))
    assert plain > 0.1 and blurred < 0.2 * plain, (plain, blurred)
    # ... and keeps what tells people apart: another face stays beyond 0.6.
    other = tf.constant(faces[[3, 3, 3]].astype(np.float32) / 127.5 - 1.0)
    assert float(D.identity_loss_fn(model, jitter=None)(target, other)) > 1.0


def test_jitter_moves_the_chip_by_a_small_similarity(faces):
    maps = tf.constant(D.ChipAligner().transforms(faces))
    assert np.allclose(D.jitter_maps(maps, 0.0, 0.0, 0.0).numpy(), maps.numpy(), atol=1e-4)
    tf.random.set_seed(1)
    out = D.jitter_maps(tf.tile(maps, [64, 1]), 3.0, 0.05, 0.05).numpy()
    base = np.tile(maps.numpy(), [64, 1])
    det = lambda m: m[:, 0] * m[:, 4] - m[:, 1] * m[:, 3]  # noqa: E731
    ratio = np.sqrt(det(out) / det(base))
    assert np.all(np.abs(ratio - 1) <= 0.0501) and ratio.std() > 0.01
    # Where the chip's centre lands in the face: within shift, scaled by the chip's scale.
    c = (D.CHIP_SIZE - 1) / 2.0
    at = lambda m: np.stack([m[:, 0] * c + m[:, 1] * c + m[:, 2], m[:, 3] * c + m[:, 4] * c + m[:, 5]], 1)  # noqa: E731
    moved = np.linalg.norm(at(out) - at(base), axis=1) / np.sqrt(det(base))
    assert moved.max() <= 3.0 * np.sqrt(2) + 1e-3 and moved.mean() > 0.5


def test_chip_maps_can_be_asked_for_from_several_threads(faces):
    from concurrent.futures import ThreadPoolExecutor

    aligner = D.ChipAligner()
    want = aligner.transforms(faces)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(aligner.transforms, [faces] * 8))
    assert all(np.array_equal(g, want) for g in got)


def test_train_config_names_dlib_as_the_identity_network():
    from tfface.identity.loss import make_identity_fn

    fn = make_identity_fn(tiny_config(identity_weight=2.0, identity_student="dlib"))
    x = tf.zeros((1, 64, 64, 3))
    assert np.isfinite(float(fn(x, x + 0.1)))


@pytest.mark.parametrize("damage", ["truncated", "header", "shape", "nan", "empty", "tail"])
def test_parser_refuses_anything_but_dlibs_network(dat_bytes, damage, tmp_path):
    b = bytearray(dat_bytes)
    if damage == "truncated":
        b = b[:len(b) // 2]
    elif damage == "header":
        b[3:16] = b"loss_mmod_xx_"
    elif damage in ("shape", "nan"):
        # The stem: its name, a tensor header of 11 bytes, 4736 floats, then its filter count.
        floats = b.find(b"con_4") + 5 + 11
        if damage == "shape":  # 32 filters -> 31
            assert b[floats + 4 * 4736:floats + 4 * 4736 + 2] == bytes([1, 32])
            b[floats + 4 * 4736 + 1] = 31
        else:
            b[floats + 40:floats + 44] = np.float32(np.nan).tobytes()
    elif damage == "empty":
        b = bytearray()
    elif damage == "tail":  # the last layer record gone
        b = b[:b.rfind(b"fc_2") - 2]
    path = tmp_path / "net.dat"
    path.write_bytes(bytes(b))
    with pytest.raises(D.DlibResNetError, match="not dlib's face-recognition ResNet"):
        D.read_weights(path)


def test_oversized_or_missing_file_is_refused(tmp_path):
    big = tmp_path / "big.dat"
    with open(big, "wb") as f:
        f.truncate(D.MAX_FILE_BYTES + 1)
    with pytest.raises(D.DlibResNetError, match="22 MB"):
        D.read_weights(big)
    with pytest.raises(D.DlibResNetError, match="cannot read"):
        D.read_weights(tmp_path / "none.dat")
