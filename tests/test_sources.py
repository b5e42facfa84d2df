"""Tests of the clean-face sources (folder, TFDS, synthetic) and their split contracts."""

from __future__ import annotations

import logging
import os

import tfface  # noqa: F401  (must precede tensorflow: selects tf_keras)

import cv2
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfface.config import DataConfig
from tfface.data import sources
from tfface.data.sources import (
    CANONICAL_LANDMARKS,
    LANDMARK_NAMES,
    FolderSource,
    SourceError,
    SyntheticSource,
    TfdsSource,
    make_source,
    render_synthetic_face,
)
from tfface.data.sources.base import _train_item_stream

S = 64


def take(ds: tf.data.Dataset, n: int) -> list[dict]:
    return [{k: v.numpy() for k, v in el.items()} for el in ds.take(n)]


def write(path, img, ext=None, params=()):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ok, buf = cv2.imencode(ext or os.path.splitext(path)[1], img, list(params))
    assert ok
    with open(path, "wb") as f:
        f.write(buf.tobytes())


def face_like(seed: int, h: int = 80, w: int = 80) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = rng.integers(0, 255, 3)
    cv2.circle(img, (w // 2, h // 2), min(h, w) // 3, tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    return img


@pytest.fixture
def folder(tmp_path):
    """Nested folder with every accepted format and odd pixel layouts, plus bad files."""
    root = tmp_path / "faces"
    write(str(root / "a" / "one.jpg"), face_like(1))
    write(str(root / "a" / "b" / "two.JPEG"), face_like(2))
    write(str(root / "three.png"), face_like(3))
    write(str(root / "c" / "four.webp"), face_like(4), params=(cv2.IMWRITE_WEBP_QUALITY, 90))
    write(str(root / "c" / "five.bmp"), face_like(5))
    write(str(root / "gray.png"), cv2.cvtColor(face_like(6), cv2.COLOR_BGR2GRAY))
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 2] = 255  # red in BGR(A)
    rgba[:, :20, 3] = 255  # left half opaque red, right half fully transparent
    write(str(root / "rgba.png"), rgba)
    sixteen = np.full((40, 40, 3), 0, np.uint16)
    sixteen[..., 1] = 40000  # green, 16-bit: 40000 >> 8 = 156
    write(str(root / "deep" / "er" / "sixteen.png"), sixteen)
    (root / "notes.txt").write_text("not an image")
    (root / "corrupt.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    (root / "empty.png").write_bytes(b"")
    # Valid PNG header and end, damaged pixel data: passes the scan (which reads only
    # the header and the last bytes), fails at decode time.
    ok, buf = cv2.imencode(".png", face_like(7))
    body = bytearray(buf.tobytes())
    body[body.index(b"IDAT") + 40] ^= 0xFF
    (root / "broken_body.png").write_bytes(bytes(body))
    return root


def cfg(**kw) -> DataConfig:
    base = dict(image_size=S, eval_count=4, synthetic_count=10, seed=7)
    base.update(kw)
    return DataConfig(**base)


# ----------------------------------------------------------------- constants


def test_canonical_landmarks_are_celeba_geometry():
    assert LANDMARK_NAMES == ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")
    assert CANONICAL_LANDMARKS.shape == (5, 2) and CANONICAL_LANDMARKS.dtype == np.float32
    # lefteye (69, 111) in the 178x218 aligned image, square crop drops 20 rows
    np.testing.assert_allclose(CANONICAL_LANDMARKS[0], [69 / 178, 91 / 178], atol=1e-6)
    np.testing.assert_allclose(CANONICAL_LANDMARKS[4], [106 / 178, 132 / 178], atol=1e-6)
    x, y = CANONICAL_LANDMARKS[:, 0], CANONICAL_LANDMARKS[:, 1]
    assert x[0] < x[2] < x[1] and x[3] < x[4]  # left/right as seen in the image
    assert y[0] == y[1] < y[2] < y[3] == y[4]  # eyes above nose above mouth


# ----------------------------------------------------------------- folder


def test_folder_reads_all_formats_and_skips_bad_files(folder, caplog):
    with caplog.at_level(logging.WARNING, logger="tfface.data.sources"):
        src = make_source(cfg(source="folder", data_dir=str(folder), eval_count=1))
    assert isinstance(src, FolderSource) and not src.synthetic
    scan_warnings = [r for r in caplog.records if "skipping" in r.getMessage()]
    assert len(scan_warnings) == 1, caplog.text
    assert "skipping 2 of 11 files" in scan_warnings[0].getMessage()
    assert "corrupt.jpg" in scan_warnings[0].getMessage()
    assert sorted(src.skipped_files) == ["corrupt.jpg", "empty.png"]
    # 9 decodable-looking files (broken_body passes the cheap scan); 10% cap -> 1 eval
    assert src.num_examples("train") + src.num_examples("eval") == 9
    assert src.num_examples("eval") == 1

    caplog.clear()
    n = src.num_examples("train")
    with caplog.at_level(logging.WARNING, logger="tfface.data.sources"):
        els = take(src.dataset("train"), 3 * n - 3)  # three epochs minus the broken file
    assert len(els) == 3 * n - 3
    idx = [int(e["index"]) for e in els]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    assert 0 <= idx[0] <= 1 and idx[-1] <= 3 * n - 1  # only the broken file's indices are missing
    assert any("broken_body.png" in r.getMessage() for r in caplog.records)
    for e in els:
        assert e["image"].shape == (S, S, 3) and e["image"].dtype == np.uint8
        np.testing.assert_array_equal(e["landmarks"], CANONICAL_LANDMARKS)
        assert e["landmarks"].dtype == np.float32


def test_folder_pixel_conversions(folder):
    src = make_source(cfg(source="folder", data_dir=str(folder), eval_count=1))
    load = src._load
    by_name = {}
    for name in ["gray.png", "rgba.png", os.path.join("deep", "er", "sixteen.png"), "c/four.webp"]:
        ds = tf.data.Dataset.from_tensors((tf.constant(0, tf.int64), tf.constant(0, tf.int64)))
        el, ok = next(iter(ds.map(load([name]))))
        assert bool(ok), name
        by_name[name] = el["image"].numpy()
    gray = by_name["gray.png"]
    np.testing.assert_array_equal(gray[..., 0], gray[..., 1])
    np.testing.assert_array_equal(gray[..., 1], gray[..., 2])
    rgba = by_name["rgba.png"].astype(int)
    # opaque half is red (RGB order!), transparent half is composited on white
    assert (rgba[:, :28, 0] > 240).all() and (rgba[:, :28, 1:] < 15).all()
    assert (rgba[:, 36:] > 240).all()
    sixteen = by_name[os.path.join("deep", "er", "sixteen.png")].astype(int)
    assert (np.abs(sixteen[..., 1] - 156) <= 1).all() and (sixteen[..., [0, 2]] == 0).all()
    webp = by_name["c/four.webp"]
    expect = cv2.cvtColor(cv2.resize(face_like(4), (S, S), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    assert np.abs(webp.astype(int) - expect.astype(int)).mean() < 6


def test_folder_center_crops_non_square(tmp_path):
    wide = np.zeros((60, 180, 3), np.uint8)  # BGR
    wide[:, :60] = (0, 255, 0)
    wide[:, 60:90] = (0, 0, 255)  # red
    wide[:, 90:120] = (255, 0, 0)  # blue
    wide[:, 120:] = (0, 255, 0)
    tall = np.transpose(wide, (1, 0, 2)).copy()  # bands top to bottom: green, red, blue, green
    write(str(tmp_path / "w" / "wide.png"), wide)
    write(str(tmp_path / "t" / "tall.png"), tall)
    for sub, axis in (("w", 1), ("t", 0)):
        src = make_source(cfg(source="folder", data_dir=str(tmp_path / sub)))
        (el,) = take(src.dataset("eval"), 5)  # single image: used for both splits
        img = el["image"].astype(int)
        assert img.shape == (S, S, 3)
        first = img[:, : S // 2 - 2] if axis == 1 else img[: S // 2 - 2]
        second = img[:, S // 2 + 2 :] if axis == 1 else img[S // 2 + 2 :]
        assert (first[..., 0] > 240).all() and (first[..., 2] < 15).all()  # red
        assert (second[..., 2] > 240).all() and (second[..., 0] < 15).all()  # blue
        assert (img[..., 1] < 15).all()  # no green: the outer bands were cropped away


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "readme.txt").write_text("hi")
    with pytest.raises(SourceError) as e:
        make_source(cfg(source="folder", data_dir=str(empty)))
    assert str(empty) in str(e.value) and ".jpg" in str(e.value) and ".webp" in str(e.value)
    missing = tmp_path / "nope"
    with pytest.raises(SourceError, match="does not exist") as e:
        make_source(cfg(source="folder", data_dir=str(missing)))
    assert str(missing) in str(e.value)
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.jpg").write_bytes(b"nope")
    with pytest.raises(SourceError, match="could be read"):
        make_source(cfg(source="folder", data_dir=str(only_bad)))
    with pytest.raises(SourceError, match="--data-dir"):
        make_source(cfg(source="folder", data_dir=None))


def test_folder_single_image_warns(tmp_path, caplog):
    write(str(tmp_path / "one.jpg"), face_like(1))
    with caplog.at_level(logging.WARNING, logger="tfface.data.sources"):
        src = make_source(cfg(source="folder", data_dir=str(tmp_path)))
    assert "single image" in caplog.text
    assert src.num_examples("train") == src.num_examples("eval") == 1
    a, b = take(src.dataset("train"), 2)
    np.testing.assert_array_equal(a["image"], b["image"])
    assert [int(a["index"]), int(b["index"])] == [0, 1]


@pytest.fixture
def many(tmp_path):
    root = tmp_path / "many"
    for i in range(30):
        write(str(root / f"d{i % 3}" / f"img_{i:03d}.png"), face_like(100 + i, 48 + i, 70))
    return root


def test_folder_eval_split_fixed_and_disjoint(many):
    a = make_source(cfg(source="folder", data_dir=str(many), eval_count=100, seed=1))
    b = make_source(cfg(source="folder", data_dir=str(many), eval_count=100, seed=999))
    assert a.num_examples("eval") == 3  # capped at 10% of 30
    assert a.num_examples("train") == 27
    assert a.eval_files == b.eval_files  # independent of the seed
    assert not set(a.eval_files) & set(a.train_files)
    ea, eb = take(a.dataset("eval"), 10), take(b.dataset("eval"), 10)
    assert [int(e["index"]) for e in ea] == [0, 1, 2]
    for x, y in zip(ea, eb):
        np.testing.assert_array_equal(x["image"], y["image"])
    # eval images never show up in the train stream
    train_imgs = {e["image"].tobytes() for e in take(a.dataset("train"), 27)}
    assert len(train_imgs) == 27
    assert not {e["image"].tobytes() for e in ea} & train_imgs
    small = make_source(cfg(source="folder", data_dir=str(many), eval_count=2))
    assert small.num_examples("eval") == 2


def test_held_out_folder_is_all_eval_in_the_fixed_order(many):
    from tfface.data.sources import FolderSource, SourceError

    split = make_source(cfg(source="folder", data_dir=str(many), eval_count=100))
    held = FolderSource(cfg(source="folder", data_dir=str(many), eval_count=20), held_out=True)
    assert held.num_examples("eval") == 20  # not capped at 10 % of the 30 files
    assert held.eval_files == (split.train_files + split.eval_files)[:20]
    assert [int(e["index"]) for e in take(held.dataset("eval"), 30)] == list(range(20))
    with pytest.raises(SourceError, match="no train split"):
        held.dataset("train")


def test_folder_train_start_equals_skip_and_reshuffles(many):
    src = make_source(cfg(source="folder", data_dir=str(many)))
    n = src.num_examples("train")
    full = take(src.dataset("train"), 2 * n + 5)
    assert [int(e["index"]) for e in full] == list(range(2 * n + 5))
    for start in (0, 5, n, n + 3):
        resumed = take(src.dataset("train", start=start), 8)
        for x, y in zip(resumed, full[start : start + 8]):
            assert int(x["index"]) == int(y["index"])
            np.testing.assert_array_equal(x["image"], y["image"])
    epoch0 = [e["image"].tobytes() for e in full[:n]]
    epoch1 = [e["image"].tobytes() for e in full[n : 2 * n]]
    assert sorted(epoch0) == sorted(epoch1) and len(set(epoch0)) == n  # each file once per epoch
    assert epoch0 != epoch1  # reshuffled per epoch
    again = take(make_source(cfg(source="folder", data_dir=str(many))).dataset("train"), n)
    assert [e["image"].tobytes() for e in again] == epoch0  # reproducible
    other_seed = take(make_source(cfg(source="folder", data_dir=str(many), seed=8)).dataset("train"), n)
    assert [e["image"].tobytes() for e in other_seed] != epoch0


def test_train_item_stream_is_cheap_to_resume():
    # a huge start only slices one permutation: no element-by-element skipping
    ds = _train_item_stream(1000, 3, 10**9 + 17, True)
    (i, item), = list(ds.take(1).as_numpy_iterator())
    full_epoch = tf.random.experimental.stateless_shuffle(
        tf.range(1000, dtype=tf.int64), seed=tf.constant([3, 10**6], tf.int64)).numpy()
    assert i == 10**9 + 17 and item == full_epoch[17]
    with pytest.raises(SourceError):
        _train_item_stream(10, 3, -1, True)


# ----------------------------------------------------------------- synthetic


def test_synthetic_source_contract(caplog, monkeypatch):
    monkeypatch.setattr(sources.synthetic, "_SYNTHETIC_BANNER_SHOWN", False)
    with caplog.at_level(logging.WARNING, logger="tfface.data.sources"):
        src = make_source(cfg())
        make_source(cfg())
    assert isinstance(src, SyntheticSource) and src.synthetic
    assert "SYNTHETIC" in caplog.text and "--data-dir" in caplog.text
    assert caplog.text.count("SYNTHETIC") == 1  # once per process, not per dataset
    assert src.num_examples("train") == 10 and src.num_examples("eval") == 4
    train = take(src.dataset("train"), 25)
    assert [int(e["index"]) for e in train] == list(range(25))
    for e in train:
        img, lm = e["image"], e["landmarks"]
        assert img.shape == (S, S, 3) and img.dtype == np.uint8
        assert lm.shape == (5, 2) and lm.dtype == np.float32
        assert (lm >= 0).all() and (lm <= 1).all()
        assert np.abs(lm - CANONICAL_LANDMARKS).max() < 0.08
        assert img.std() > 20  # not flat
    epoch0 = [e["image"].tobytes() for e in train[:10]]
    epoch1 = [e["image"].tobytes() for e in train[10:20]]
    assert len(set(epoch0)) == 10 and sorted(epoch0) == sorted(epoch1) and epoch0 != epoch1
    resumed = take(src.dataset("train", start=13), 5)
    for x, y in zip(resumed, train[13:18]):
        assert int(x["index"]) == int(y["index"])
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["landmarks"], y["landmarks"])
    ev = take(src.dataset("eval"), 100)
    assert [int(e["index"]) for e in ev] == [0, 1, 2, 3]
    ev2 = take(make_source(cfg()).dataset("eval"), 100)
    for x, y in zip(ev, ev2):
        np.testing.assert_array_equal(x["image"], y["image"])
    assert not {e["image"].tobytes() for e in ev} & set(epoch0)  # disjoint from train


def test_synthetic_render_deterministic_and_varied():
    a, la = render_synthetic_face(5, 3, S)
    b, lb = render_synthetic_face(5, 3, S)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    faces = [render_synthetic_face(5, i, S)[0] for i in range(8)]
    assert len({f.tobytes() for f in faces}) == 8
    assert not np.array_equal(render_synthetic_face(6, 3, S)[0], a)  # seed matters
    assert not np.array_equal(render_synthetic_face(5, 3, S, stream=1)[0], a)  # eval stream
    # faces differ a lot, not just by noise
    diffs = [np.abs(faces[i].astype(int) - faces[i + 1].astype(int)).mean() for i in range(7)]
    assert min(diffs) > 10
    # skin-colored pixels between the eyes and the mouth; eye region darker details
    big, lm = render_synthetic_face(11, 0, 128)
    assert big.shape == (128, 128, 3)
    cheek = big[int(lm[2, 1] * 128) - 2 : int(lm[2, 1] * 128) + 2,
                int((lm[0, 0] + 0.02) * 128) : int((lm[0, 0] + 0.04) * 128)]
    assert cheek.size and cheek[..., 0].mean() >= cheek[..., 2].mean()  # skin is red >= blue


def test_synthetic_runs_inside_map_and_eagerly_equal():
    src = SyntheticSource(cfg(shuffle_files=False))
    (el,) = take(src.dataset("train", start=3), 1)
    img, lm = render_synthetic_face(7, 3, S, 0)
    np.testing.assert_array_equal(el["image"], img)
    np.testing.assert_array_equal(el["landmarks"], lm)


# ----------------------------------------------------------------- tfds

_LM_KEYS = [f"{p}_{a}" for p in ("lefteye", "righteye", "nose", "leftmouth", "rightmouth") for a in "xy"]
_LM_PX = [69, 111, 108, 111, 88, 135, 72, 152, 106, 152]


class TffaceFakeCeleba(tfds.core.GeneratorBasedBuilder):
    """A tiny CelebA look-alike (178x218 images with pixel landmarks), built offline."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(218, 178, 3), encoding_format="png"),
                "landmarks": {k: np.int64 for k in _LM_KEYS},
            }),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 6), "test": self._generate_examples(100, 5)}

    def _generate_examples(self, first, n):
        for i in range(first, first + n):
            img = np.full((218, 178, 3), 128, np.uint8)
            img[:20] = (255, 0, 0)  # rows removed by the square crop
            img[-20:] = (255, 0, 0)
            img[20:-20, :89] = (0, (i * 7) % 256, 0)  # id encoded in the left half
            lm = dict(zip(_LM_KEYS, _LM_PX))
            lm["nose_x"] = 88 + i % 3
            yield i, {"image": img, "landmarks": lm}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tfds")
    TffaceFakeCeleba(data_dir=str(d)).download_and_prepare()
    return str(d)


def test_tfds_source_reads_prepared_dataset(tfds_dir):
    c = cfg(source="tfds", tfds_name="tfface_fake_celeba", tfds_data_dir=tfds_dir, eval_count=3)
    src = make_source(c)
    assert isinstance(src, TfdsSource) and not src.synthetic
    assert src.num_examples("train") == 6 and src.num_examples("eval") == 3
    ev = take(src.dataset("eval"), 10)
    assert [int(e["index"]) for e in ev] == [0, 1, 2]
    for e in ev:
        img = e["image"].astype(int)
        assert img.shape == (S, S, 3) and e["image"].dtype == np.uint8
        # the red top/bottom rows were cropped away: left half green, right half gray
        assert (img[:, :28, 0] < 10).all() and (np.abs(img[:, 36:] - 128) <= 2).all()
        lm = e["landmarks"]
        np.testing.assert_allclose(lm[[0, 1, 3, 4]], np.array(
            [[69, 91], [108, 91], [72, 132], [106, 132]]) / 178, atol=1e-6)
        assert 88 / 178 - 1e-6 <= lm[2, 0] <= 90 / 178 + 1e-6
    ev_ids = {round(float(e["image"][S // 2, 5, 1]) / 7) for e in ev}
    train = take(src.dataset("train"), 14)
    assert [int(e["index"]) for e in train] == list(range(14))
    tr_ids = [round(float(e["image"][S // 2, 5, 1]) / 7) for e in train]
    assert set(tr_ids) == set(range(6)) and not set(tr_ids) & ev_ids
    resumed = take(src.dataset("train", start=4), 5)
    for x, y in zip(resumed, train[4:9]):
        assert int(x["index"]) == int(y["index"])
        np.testing.assert_array_equal(x["image"], y["image"])


def test_tfds_not_prepared_error(tmp_path):
    with pytest.raises(SourceError) as e:
        make_source(cfg(source="tfds", tfds_name="celeb_a", tfds_data_dir=str(tmp_path)))
    msg = str(e.value)
    assert "not prepared" in msg and "tfds build celeb_a --data_dir" in msg
    assert "never downloads" in msg and str(tmp_path) in msg
    assert not any(tmp_path.iterdir()) or not list(tmp_path.rglob("*.tfrecord*"))
    with pytest.raises(SourceError, match="not available"):
        make_source(cfg(source="tfds", tfds_name="no_such_dataset_xyz", tfds_data_dir=str(tmp_path)))


# ----------------------------------------------------------------- factory


def test_make_source_dispatch_and_errors(folder):
    assert type(make_source(cfg(source="synthetic"))) is SyntheticSource
    assert type(make_source(cfg(source="folder", data_dir=str(folder)))) is FolderSource
    with pytest.raises(SourceError, match="unknown data source 'nope'.*synthetic, folder, tfds"):
        make_source(cfg(source="nope"))
    src = make_source(cfg())
    with pytest.raises(SourceError, match="split"):
        src.dataset("test")
    with pytest.raises(SourceError, match="split"):
        src.num_examples("validation")
    with pytest.raises(SourceError, match="start"):
        src.dataset("train", start=-1)
    assert issubclass(SourceError, ValueError)
