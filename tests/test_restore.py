"""Restoring real images: folders, videos, masks, Keras and TFLite through one path."""

from __future__ import annotations


import cv2
import numpy as np

from pipelines import restore as restore_cli
from tfface.inference import FaceLocator, Restorer, restore_image


def _photo(h, w, seed):
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 40, np.uint8)
    cv2.circle(img, (w // 2, h // 2), min(h, w) // 3, tuple(int(v) for v in rng.integers(80, 250, 3)), -1)
    return img


def test_folder_with_a_non_image_file_and_a_video(trained_tiny_run, tmp_path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    cv2.imwrite(str(src / "a.jpg"), _photo(100, 80, 0))
    cv2.imwrite(str(src / "sub" / "b.png"), _photo(64, 64, 1))
    (src / "notes.txt").write_text("not an image")
    video = src / "clip.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 72))
    for i in range(5):
        w.write(_photo(72, 96, i))
    w.release()
    out = tmp_path / "out"
    code = restore_cli.main([str(src), "--model", trained_tiny_run, "--out", str(out),
                             "--compare", "--quiet"])
    assert code == 0
    printed = capsys.readouterr()
    assert "Restored 3 file(s)" in printed.out and "skipped 1 non-image" in printed.out
    assert "centered square" in printed.err  # no face detector installed: the note says so
    a = cv2.imread(str(out / "a_jpg.png"))
    assert a.shape == (100, 80, 3)  # the photo keeps its size
    assert cv2.imread(str(out / "a_jpg_compare.png")).shape == (100, 160, 3)
    assert cv2.imread(str(out / "sub" / "b_png.png")).shape == (64, 64, 3)
    cap = cv2.VideoCapture(str(out / "clip_mp4.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    ok, frame = cap.read()
    assert ok and frame.shape == (72, 96, 3)


def test_keras_and_tflite_share_one_path(trained_tiny_run, tiny_int8_file):
    img = _photo(80, 80, 3)
    k = Restorer.load(trained_tiny_run)
    t = Restorer.load(tiny_int8_file)
    assert (k.spec.input_size, t.spec.input_size, t.spec.task) == (64, 64, "inpaint")
    loc = FaceLocator()
    a = restore_image(k, img, loc).astype(np.float64)
    b = restore_image(t, img, loc).astype(np.float64)
    psnr = 10 * np.log10(255**2 / max(np.mean((a - b) ** 2), 1e-9))
    assert psnr > 30, psnr


def test_compose_changes_only_the_hole(trained_tiny_run, tmp_path):
    img = _photo(64, 64, 4)
    mask = np.zeros((64, 64), bool)
    mask[20:30, 10:40] = True
    out = restore_image(Restorer.load(trained_tiny_run), img, FaceLocator(), mask, compose=True)
    assert np.array_equal(out[~mask], img[~mask])
    assert not np.array_equal(out[mask], img[mask])


def test_bad_inputs_are_clear_errors(trained_tiny_run, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), _photo(64, 64, 5))
    cv2.imwrite(str(tmp_path / "m.png"), np.zeros((10, 10), np.uint8))
    assert restore_cli.main([str(tmp_path / "a.png"), "--model", trained_tiny_run,
                             "--compose", "--out", str(tmp_path / "o")]) == 2
    assert "--compose needs --mask" in capsys.readouterr().err
    assert restore_cli.main([str(tmp_path / "a.png"), "--model", trained_tiny_run,
                             "--mask", str(tmp_path / "m.png"), "--out", str(tmp_path / "o")]) == 2
    assert "must match" in capsys.readouterr().err
    assert restore_cli.main([str(tmp_path / "a.png"), "--model", str(tmp_path / "x.tflite")]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert restore_cli.main([str(tmp_path / "nope.png"), "--model", trained_tiny_run]) == 2
