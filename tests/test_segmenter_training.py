"""The occluder segmenter's training data, training loop and export (int8 + fp16 twin),
and the folder source's face framing that places the face-shaped occluders."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from conftest import synthetic_face_folder
from tfface.config import Config, ConfigError, resolve, validate
from tfface.data.sources import CANONICAL_LANDMARKS, make_source, render_synthetic_face
from tfface.faces.align import TEMPLATE
from tfface.segmenter.data import _photometric, _recolor_occluder, segmenter_dataset
from tfface.segmenter.model import SegmenterConfig, load_segmenter
from tfface.segmenter.train import train_segmenter


@pytest.fixture(scope="module")
def face_folder(tmp_path_factory):
    return synthetic_face_folder(tmp_path_factory.mktemp("faces"), 24, 128)


SMALL = {"facemask": 1.0, "sunglasses": 1.0, "boxes": 1.0}
"""A mixture that builds fast (the default one traces ten generators: minutes)."""


def _folder_cfg(folder, framing=None):
    cfg = resolve("vnet", "tiny")
    cfg.data.source, cfg.data.data_dir = "folder", folder
    if framing:
        cfg.data.face_framing = framing
    return cfg


def test_folder_source_places_faces_by_the_chosen_framing(face_folder):
    el = next(iter(make_source(_folder_cfg(face_folder).data).dataset("train")))
    np.testing.assert_allclose(el["landmarks"].numpy(), CANONICAL_LANDMARKS)
    el = next(iter(make_source(_folder_cfg(face_folder, "template").data).dataset("train")))
    np.testing.assert_allclose(el["landmarks"].numpy(), np.asarray(TEMPLATE, np.float32))
    # The two framings differ where it matters: the eye line (0.51 vs 0.43 of the side).
    assert CANONICAL_LANDMARKS[0, 1] - TEMPLATE[0, 1] > 0.06


def test_face_framing_is_checked_and_old_configs_keep_celeba(face_folder, tmp_path):
    cfg = _folder_cfg(face_folder, "upside-down")
    with pytest.raises(ConfigError, match="face_framing"):
        validate(cfg)
    old = _folder_cfg(face_folder).to_dict()
    del old["data"]["face_framing"]  # a config.json written before the key existed
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    assert Config.load(path).data.face_framing == "celeba"
    assert resolve("vnet", "mobile").data.face_framing == "template"


def test_recolour_touches_only_the_occluder_and_photometric_zero_is_identity():
    rng = np.random.default_rng(0)
    occluded = tf.constant(rng.uniform(0, 255, (32, 32, 3)), tf.float32)
    cover = np.zeros((32, 32, 1), np.float32)
    cover[8:20, 4:28] = 1.0
    out = _recolor_occluder(occluded, occluded, tf.constant(cover), tf.constant([1, 2], tf.int64),
                            1.0).numpy()
    inside = cover[..., 0] > 0.5
    np.testing.assert_array_equal(out[~inside], occluded.numpy()[~inside])
    assert np.abs(out[inside] - occluded.numpy()[inside]).mean() > 1.0
    img = tf.constant(rng.uniform(-1, 1, (32, 32, 3)), tf.float32)
    same = _photometric(img, tf.constant([3, 4], tf.int64), 0.0).numpy()
    np.testing.assert_allclose(same, img.numpy(), atol=1e-6)
    changed = _photometric(img, tf.constant([3, 4], tf.int64), 1.0).numpy()
    assert changed.min() >= -1.0 and changed.max() <= 1.0
    assert np.abs(changed - img.numpy()).mean() > 0.02


def test_segmenter_batches_are_faces_with_binary_masks_drawn_at_twice_the_size(face_folder):
    cfg = SegmenterConfig(data_dir=face_folder, image_size=32, filters=[8, 16], batch_size=4,
                          occlusions=SMALL)
    x, y = next(iter(segmenter_dataset(cfg, "train")))
    assert x.shape == (4, 32, 32, 3) and y.shape == (4, 32, 32, 1)
    assert float(tf.reduce_min(x)) >= -1.0 and float(tf.reduce_max(x)) <= 1.0
    assert set(np.unique(y.numpy())) <= {0.0, 1.0}
    # Eval batches (no augmentation): outside the occluder the face is the clean face
    # shrunk from 2x, so the occluder changes only its own pixels.
    cfg1 = SegmenterConfig(data_dir=face_folder, image_size=32, filters=[8, 16], batch_size=4,
                           mask_dir=None, occlusions=SMALL, photo_conditions=0.0)
    xe, ye = next(iter(segmenter_dataset(cfg1, "eval")))
    assert 0.01 < float(tf.reduce_mean(ye)) < 0.6


def test_train_resume_and_export_int8_with_its_fp16_twin(face_folder, tmp_path):
    from pipelines import export_segmenter
    from tfface.cards import CARD_FORMAT, CARD_HASH_KEY, card_problems, load_card, read_card
    from tfface.lite import LiteRunner

    run = str(tmp_path / "seg")
    cfg = SegmenterConfig(data_dir=face_folder, image_size=32, filters=[8, 16], batch_size=4,
                          steps=6, save_every=3, occlusions=SMALL, far_weight=2.0)
    train_segmenter(cfg, run, log_every=3)
    log = [json.loads(line) for line in open(os.path.join(run, "train_log.jsonl"))]
    assert [r["step"] for r in log] == [3, 6]
    cfg.steps = 9
    train_segmenter(cfg, run, log_every=3)  # resumes at step 6
    log = [json.loads(line) for line in open(os.path.join(run, "train_log.jsonl"))]
    assert [r["step"] for r in log] == [3, 6, 9]
    model, _ = load_segmenter(run)

    out = str(tmp_path / "assets")
    assert export_segmenter.main([run, "--calib-dir", face_folder, "--eval-dir", face_folder,
                                  "--eval-count", "4", "--samples", "8", "--out", out]) == 0
    # a face of the kind the file was calibrated on: int8 is judged in distribution (on uniform
    # noise a 9-step model's int8 error swings with the run's thread timing, up to 0.15;
    # on faces it is about 0.001 mean, 0.007 max)
    face, _ = render_synthetic_face(5, 30, 128)
    x = (cv2.resize(face, (32, 32), interpolation=cv2.INTER_AREA)[None].astype(np.float32)
         / 127.5 - 1.0)
    ref = model(x, training=False).numpy()
    for mode, mean_tol, max_tol in (("int8", 0.01, 0.05), ("fp16", 2e-4, 2e-3)):
        path = os.path.join(out, f"segmenter_{mode}.tflite")
        assert card_problems(path) == []
        card = json.load(open(os.path.join(out, f"segmenter_{mode}.json")))
        assert card["quantization"]["mode"] == mode
        # the card round-trips: the JSON beside the file (with the file's hash) is the one
        # the loaders read, the file embeds the same card, in the shared card format
        assert card["format"] == CARD_FORMAT and list(card)[:5] == [
            "format", "name", "file", "task", "architecture"]
        assert load_card(path) == card
        assert read_card(path) == {k: v for k, v in card.items() if k != CARD_HASH_KEY}
        assert card["training_data"]["render_scale"] == 2
        # the card names the run's own folder and loss, not a fixed data set
        folder = os.path.basename(os.path.normpath(face_folder))
        assert f"folder '{folder}'" in card["training_data"]["description"]
        assert card["training_data"]["loss"] == {"far_weight": 2.0, "far_margin_px": 2}
        err = np.abs(LiteRunner(path)(x) - ref)
        assert err.mean() < mean_tol and err.max() < max_tol, (mode, err.mean(), err.max())
        manifest = json.load(open(os.path.join(out, f"segmenter_{mode}_samples.json")))
        assert manifest["model"] == f"segmenter_{mode}.tflite" and len(manifest["samples"]) == 4
    assert export_segmenter.main([run, "--calib-dir", face_folder, "--eval-dir", face_folder,
                                  "--out", out, "--modes", "int4"]) == 2

    # A new run starts from the exported float file's weights (batch norms folded by the
    # converter, set back so training mode starts from the same function) ...
    from tfface.segmenter.model import build_segmenter, init_from_tflite

    fp16 = os.path.join(out, "segmenter_fp16.tflite")
    fresh = build_segmenter(32, [8, 16])
    assert np.abs(fresh(x, training=False).numpy() - ref).max() > 0.01  # not yet the model
    batch = next(iter(segmenter_dataset(cfg, "eval")))[0].numpy()
    assert init_from_tflite(fresh, fp16, batch) < 2e-3
    np.testing.assert_allclose(fresh(x, training=False).numpy(), ref, atol=2e-3)
    np.testing.assert_allclose(fresh(batch, training=True).numpy(),
                               fresh(batch, training=False).numpy(), atol=2e-3)
    # ... and a model of another input size from the same file (its convolutions fit any
    # size; the read-back is checked in a twin at the file's size, on the inputs shrunk)
    big = build_segmenter(64, [8, 16])
    big_batch = tf.image.resize(batch, (64, 64)).numpy()
    assert init_from_tflite(big, fp16, big_batch) < 2e-3
    for name in ("seg_down0_conv1", "seg_down1_conv2", "seg_up0_conv1", "seg_logits"):
        np.testing.assert_allclose(big.get_layer(name).get_weights()[0],
                                   fresh.get_layer(name).get_weights()[0], atol=1e-6)
    assert big(big_batch, training=False).shape == (len(batch), 64, 64, 1)
    run2 = str(tmp_path / "seg2")
    cfg2 = SegmenterConfig(data_dir=face_folder, image_size=32, filters=[8, 16], batch_size=4,
                           steps=0, init_from=fp16, occlusions=SMALL)
    train_segmenter(cfg2, run2)
    np.testing.assert_allclose(load_segmenter(run2)[0](x, training=False).numpy(), ref, atol=2e-3)
    with pytest.raises(ValueError, match="int8 weights"):
        init_from_tflite(build_segmenter(32, [8, 16]), os.path.join(out, "segmenter_int8.tflite"),
                         batch)
    with pytest.raises(ValueError, match=r"other --filters"):
        init_from_tflite(build_segmenter(32, [4, 16]), fp16, batch)


def test_training_mixture_refuses_held_out_generators(face_folder, tmp_path):
    from tfface.data import occlusion as occ
    from tfface.segmenter.model import SEGMENTER_MIXTURE

    assert {"realmask", "scarf", "hair"} <= set(SEGMENTER_MIXTURE)
    for name in sorted(occ.HELD_OUT):
        cfg = SegmenterConfig(data_dir=face_folder, image_size=32, filters=[8, 16],
                              occlusions={"facemask": 1.0, name: 0.5})
        with pytest.raises(ValueError, match=f"held-out generator.*{name}"):
            train_segmenter(cfg, str(tmp_path / name))
        assert not os.path.exists(tmp_path / name / "ckpt")


def test_negative_warm_up_or_photo_conditions_are_refused_before_any_file(face_folder,
                                                                         tmp_path, capsys):
    from pipelines import train_segmenter as cli

    for flag in ("--lr-warmup=-5", "--photo-conditions=-0.5", "--far-weight=-1"):
        out = tmp_path / flag.strip("-").split("=")[0]
        assert cli.main(["--data-dir", face_folder, "--out", str(out), "--image-size", "32",
                         "--filters", "8,16", flag]) == 2
        assert "must be >= 0" in capsys.readouterr().err
        assert not out.exists()


def test_far_weight_charges_a_false_hole_on_skin_more_than_doubt_at_the_hole_edge():
    from tfface.segmenter.model import segmenter_loss

    y = np.zeros((1, 32, 32, 1), np.float32)
    y[0, 12:20, 12:20] = 1.0
    edge, far = y.copy(), y.copy()
    edge[0, 11, 12:20] = 1.0  # one row of doubt next to the hole
    far[0, 26, 12:20] = 1.0  # the same false pixels on "cheek", 6 px away
    p = lambda m: tf.constant(np.clip(m, 0.02, 0.98))  # noqa: E731
    plain = [float(segmenter_loss(y, p(m))) for m in (edge, far)]
    assert plain[0] == pytest.approx(plain[1], rel=1e-6)  # off: both cost the same
    weighted = [float(segmenter_loss(y, p(m), far_weight=4.0, far_margin=2))
                for m in (edge, far)]
    # the row of doubt is spared; the same false pixels far away cost 1 + 4 times as much
    extra = 8 * (np.log(0.98) - np.log(0.02)) / (32 * 32)  # a false pixel vs a right one
    assert weighted[1] - weighted[0] == pytest.approx(4.0 * extra, rel=1e-3)


def test_card_names_the_starting_weights_without_machine_paths(tmp_path):
    from tfface.segmenter.export import init_note

    a, b = tmp_path / "seg-a", tmp_path / "seg-b"
    a.mkdir()
    b.mkdir()
    (a / "segmenter.json").write_text(json.dumps({"init_from": "/x/y/segmenter_fp16.tflite"}))
    (b / "segmenter.json").write_text(json.dumps({"init_from": str(a)}))
    assert init_note(None) is None
    assert init_note(str(b)) == "run 'seg-b' (from run 'seg-a' (from segmenter_fp16.tflite))"
    assert str(tmp_path) not in init_note(str(b))


def test_a_second_training_on_the_same_folder_is_refused_and_changes_nothing(
        face_folder, tmp_path, capsys):
    from pipelines import train_segmenter as cli
    from tfface.runlock import DirBusyError, DirLock

    run = tmp_path / "seg"
    cfg = SegmenterConfig(data_dir=face_folder, image_size=32, filters=[8, 16], batch_size=4,
                          steps=2, occlusions={"boxes": 1.0})
    with DirLock(str(run), "train"):  # another training holds the folder
        with pytest.raises(DirBusyError, match="segmenter run folder .* is in use by"):
            train_segmenter(cfg, str(run))
        assert cli.main(["--data-dir", face_folder, "--out", str(run), "--image-size", "32",
                         "--filters", "8,16", "--steps", "2"]) == 2
        assert "is in use by" in capsys.readouterr().err
        assert os.listdir(run) == [".tfface-train.lock"]  # only the holder's lock file
    assert os.listdir(run) == []


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_files(face_folder, tmp_path,
                                                                       monkeypatch):
    from tfface.segmenter import train as seg_train

    run = str(tmp_path / "seg")
    cfg = SegmenterConfig(data_dir=face_folder, image_size=32, filters=[8, 16], batch_size=4,
                          steps=2, save_every=2, occlusions={"boxes": 1.0})
    train_segmenter(cfg, run, log_every=2)
    weights = os.path.join(run, "segmenter.weights.h5")
    before = open(weights, "rb").read()
    good = tf.train.latest_checkpoint(os.path.join(run, "ckpt"))
    real = seg_train.segmenter_loss
    monkeypatch.setattr(seg_train, "segmenter_loss", lambda *a: real(*a) * float("nan"))
    cfg.steps = 4
    with pytest.raises(seg_train.SegmenterDiverged, match=r"NaN/Inf at step 3; ") as e:
        train_segmenter(cfg, run, log_every=2)
    assert f"the last checkpoint ({good}) is kept" in str(e.value)
    assert open(weights, "rb").read() == before  # the NaN weights were never saved
    assert tf.train.latest_checkpoint(os.path.join(run, "ckpt")) == good
    assert [json.loads(line)["step"] for line in open(os.path.join(run, "train_log.jsonl"))] \
        == [2]
    assert not [f for f in os.listdir(run) if "tfface" in f]  # no lock, no temporary left
