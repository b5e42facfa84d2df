"""The identity student (tfface.identity.student): a Keras stand-in for dlib's face
descriptor whose distance is a training loss. Its files are untrusted input, it can fit
descriptors it is shown, and a run trains with the term."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import tiny_config
from tfface.identity import student as ids
from tfface.config import ConfigError, validate

SMALL = dict(image_size=64, work_size=32, widths=[4, 8])


def _student(tmp_path, **kw):
    spec = ids.StudentSpec(**{**SMALL, **kw})
    model = ids.build_student(spec)
    folder = str(tmp_path / "student")
    ids.save_student(model, spec, folder, {"note": "test"})
    return model, spec, folder


def _faces(n, size=64, seed=0):
    """Smooth random faces as uint8 (a 4x4 grid of colours, upsampled)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 4, 4, 3)).astype(np.float32)
    return tf.cast(tf.image.resize(small, (size, size)), tf.uint8).numpy()


def test_saved_student_loads_with_the_same_outputs(tmp_path):
    model, _, folder = _student(tmp_path)
    x = _faces(3).astype(np.float32) / 127.5 - 1
    loaded = ids.load_student(folder)
    assert loaded.output_shape == (None, 128)
    np.testing.assert_allclose(loaded(x, training=False).numpy(),
                               model(x, training=False).numpy(), atol=1e-6)
    assert not loaded.trainable
    # The weights file itself names the same student.
    ids.load_student(os.path.join(folder, ids.STUDENT_WEIGHTS))


def test_student_files_that_are_not_a_students_are_refused(tmp_path):
    _, _, folder = _student(tmp_path)
    card = os.path.join(folder, ids.STUDENT_CARD)
    with pytest.raises(ids.StudentError, match="is not an identity student"):
        ids.load_student(str(tmp_path / "nowhere"))
    good = json.load(open(card))
    for bad, why in [({**good, "format": "other"}, "not a tfface identity student"),
                     ({**good, "spec": {**good["spec"], "widths": [4, 8, 16]}}, "does not hold"),
                     ({**good, "spec": {**good["spec"], "dim": 64}}, "not a usable"),
                     ({**good, "spec": {**good["spec"], "__class__": "os.system"}}, "unknown keys")]:
        json.dump(bad, open(card, "w"))
        with pytest.raises(ids.StudentError, match=why):
            ids.load_student(folder)
    open(card, "w").write("{not json")
    with pytest.raises(ids.StudentError, match="not a usable identity student card"):
        ids.load_student(folder)


def test_identity_loss_is_zero_for_the_target_and_pulls_the_restoration(tmp_path):
    model, _, _ = _student(tmp_path)
    # Non-zero BN scales so the random student is not constant near its output.
    for layer in model.layers:
        if layer.name.endswith("_bn"):
            layer.gamma.assign(tf.ones_like(layer.gamma))
    fn = ids.student_loss_fn(model)
    target = tf.constant(_faces(4).astype(np.float32) / 127.5 - 1)
    other = tf.constant(_faces(4, seed=1).astype(np.float32) / 127.5 - 1)
    assert float(fn(target, target)) == pytest.approx(0.0, abs=1e-6)
    pred = tf.Variable(other)
    with tf.GradientTape() as tape:
        loss = fn(target, pred)
    grad = tape.gradient(loss, pred)
    assert float(loss) > 0 and float(tf.reduce_max(tf.abs(grad))) > 0
    # A small step down the gradient brings the restoration's descriptor closer.
    pred.assign_sub(0.5 * grad / float(tf.reduce_max(tf.abs(grad))) * 0.05)
    assert float(fn(target, pred)) < float(loss)


def test_the_student_learns_descriptors_it_is_shown():
    n = 320
    images = _faces(n)
    # Known descriptors: a fixed projection of each face's 4x4 colour grid.
    rng = np.random.default_rng(3)
    grid = tf.image.resize(images.astype(np.float32), (4, 4), method="area").numpy()
    proj = rng.normal(size=(48, 128)).astype(np.float32) / 48 ** 0.5
    descs = (grid.reshape(n, -1) / 127.5 - 1) @ proj
    data = {"images": images, "descriptors": descs, "kind": np.zeros(n, np.int8),
            "face": np.arange(n)}
    lines = []
    spec = ids.StudentSpec(image_size=64, work_size=32, widths=[8, 16])
    model, facts = ids.train_student(data, spec, epochs=40, batch_size=32, lr=3e-3,
                                     val_fraction=0.2, log=lines.append)
    mean_guess = np.linalg.norm(descs - descs.mean(0), axis=1).mean()
    assert facts["epochs_run"] == 40 and len(lines) == 40
    # Held-out faces: well below guessing the mean descriptor for every face.
    assert facts["val_distance"] < 0.75 * mean_guess, (facts["val_distance"], mean_guess)
    assert facts["history"][-1]["point"] < facts["history"][0]["point"]


class _MeanColour:
    """A stand-in embedder: each face's mean colour, repeated to 128 numbers."""

    def embed(self, faces):
        from tfface.identity.verify import as_uint8_faces

        m = as_uint8_faces(faces).reshape(len(faces), -1, 3).mean(1) / 255.0
        return np.tile(m, (1, 43))[:, :128].astype(np.float32)


def test_describe_keeps_each_face_with_its_damaged_and_restored_versions():
    from tfface.data.pipeline import make_dataset

    cfg = tiny_config()
    batches = ({k: v.numpy() for k, v in b.items()}
               for b in make_dataset(cfg, "train", batch_size=4))
    seen = []
    data = ids.describe(batches, lambda b: -np.asarray(b["clean"]), _MeanColour(), 10,
                        progress=seen.append)
    assert seen == [4, 4, 2]
    assert data["images"].shape == (30, 64, 64, 3) and data["images"].dtype == np.uint8
    assert data["descriptors"].shape == (30, 128)
    kinds, faces = data["kind"], data["face"]
    assert sorted(np.bincount(kinds)) == [10, 10, 10]
    for k in range(3):
        assert sorted(faces[kinds == k]) == list(range(10))
    clean = data["images"][kinds == 0].astype(int)
    restored = data["images"][kinds == 2].astype(int)
    damaged = data["images"][kinds == 1].astype(int)
    assert np.abs(clean + restored - 255).max() <= 1  # the restore function's output
    assert (damaged != clean).any()  # the occlusion mixture damaged them


def test_a_run_trains_with_the_identity_term(tmp_path):
    from tfface.train import run

    _, _, folder = _student(tmp_path)
    cfg = tiny_config(epochs=1, steps_per_epoch=3, adv_weight=0.0, identity_weight=2.0,
                      identity_student=folder)
    validate(cfg)
    result = run(cfg, str(tmp_path / "run"), progress=False)
    assert result.status == "completed"
    assert "identity" in result.history and np.isfinite(result.history["identity"]).all()
    assert result.history["identity"][-1] >= 0


def test_identity_settings_that_cannot_work_are_refused_before_training(tmp_path):
    from tfface.identity.loss import make_identity_fn

    with pytest.raises(ConfigError, match="needs train.identity_student"):
        validate(tiny_config(identity_weight=1.0))
    with pytest.raises(ConfigError, match="identity_weight must be >= 0"):
        validate(tiny_config(identity_weight=-1.0, identity_student="x"))
    with pytest.raises(ConfigError, match="not an identity student"):
        make_identity_fn(tiny_config(identity_weight=1.0, identity_student=str(tmp_path)))
    _, _, folder = _student(tmp_path, image_size=32, work_size=32)
    with pytest.raises(ConfigError, match="reads 32 px faces, but this run's data.image_size is 64"):
        make_identity_fn(tiny_config(identity_weight=1.0, identity_student=folder))
    assert make_identity_fn(tiny_config()) is None


def test_the_command_trains_a_student_and_never_overwrites_one(tmp_path, capsys):
    from pipelines import identity_student as cli

    n = 96
    faces = str(tmp_path / "faces.npz")
    np.savez(faces, images=_faces(n), descriptors=np.random.default_rng(0).normal(
        size=(n, 128)).astype(np.float32), kind=np.zeros(n, np.int8), face=np.arange(n))
    out = str(tmp_path / "st")
    args = ["train", "--faces-file", faces, "--out", out, "--epochs", "1", "--batch-size",
            "16", "--work-size", "32", "--widths", "4", "8"]
    assert cli.main(args) == 0
    assert "held-out distance to dlib" in capsys.readouterr().out
    card = json.load(open(os.path.join(out, ids.STUDENT_CARD)))
    assert card["spec"]["widths"] == [4, 8] and card["epochs_run"] == 1
    before = open(os.path.join(out, ids.STUDENT_WEIGHTS), "rb").read()
    assert cli.main(args) == 2
    assert "already holds a student" in capsys.readouterr().err
    assert open(os.path.join(out, ids.STUDENT_WEIGHTS), "rb").read() == before


def test_describe_and_check_commands(tmp_path, monkeypatch, capsys):
    """describe writes faces of the run's training stream with the embedder's descriptors
    and never overwrites; check compares a student with the embedder on a folder."""
    import cv2

    from pipelines import identity_student as cli
    from tfface.identity import verify as ident
    from tfface.rundir import load_run_config

    class Colour(_MeanColour, ident.Embedder):
        name = "colour"

        def similarity(self, a, b):
            return ident.negative_distance(a, b)

    monkeypatch.setitem(ident.EMBEDDERS, "dlib", Colour)
    run = tmp_path / "run"
    run.mkdir()
    tiny_config().save(run / "config.json")
    _, gen = load_run_config(str(run))
    gen.save_weights(str(run / "best.weights.h5"))
    out = str(tmp_path / "faces.npz")
    argv = ["describe", "--run", str(run), "--faces", "6", "--batch-size", "4", "--out", out]
    assert cli.main(argv) == 0
    with np.load(out) as z:
        assert z["images"].shape == (18, 64, 64, 3) and z["descriptors"].shape == (18, 128)
        assert sorted(np.bincount(z["kind"])) == [6, 6, 6]
    stamp = os.stat(out).st_mtime_ns
    assert cli.main(argv) == 2
    assert "exists" in capsys.readouterr().err and os.stat(out).st_mtime_ns == stamp

    folder = tmp_path / "people"
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = ["file,person"]
    for p in range(5):
        colour = rng.integers(30, 225, 3)
        for i in range(2):
            img = np.clip(colour + rng.normal(0, 4, (64, 64, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"p{p}_{i}.png"), img[..., ::-1])
            lines.append(f"p{p}_{i}.png,person{p}")
    (folder / "IDENTITIES.csv").write_text("\n".join(lines) + "\n")
    _, _, student = _student(tmp_path)
    capsys.readouterr()
    assert cli.main(["check", "--student", student, "--data-dir", str(folder),
                     "--image-size", "64"]) == 0
    text = capsys.readouterr().out
    assert "10 photos of 5 people" in text
    # The colour embedder verifies every pair of this folder; an untrained student is
    # measured by the same rule.
    assert "dlib     TPR @ 1% FPR 1.000" in text and "student  TPR @ 1% FPR" in text
    assert "student to dlib: mean distance" in text
