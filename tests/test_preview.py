"""pipelines.preview: PNG grids of synthesized samples, clear errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines import preview
from tfface.data.sources import render_synthetic_face

G = preview.GAP


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    for i in range(6):
        img, _ = render_synthetic_face(5, i, 80, 0)
        cv2.imwrite(str(d / f"face{i}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return str(d)


@pytest.mark.parametrize(
    "extra",
    [
        ["--task", "inpaint"],
        ["--task", "inpaint", "--occlusion", "boxes"],
        ["--task", "sr", "--scale", "2", "--degradation", "classic"],
    ],
)
def test_preview_writes_grid(faces, tmp_path, extra):
    out = tmp_path / "grid.png"
    assert preview.main(extra + ["--data-dir", faces, "--size", "64", "--n", "3",
                                 "--out", str(out)]) == 0
    img = cv2.imread(str(out))
    assert img.shape == (3 * 64 + 4 * G, 3 * 64 + 4 * G, 3)
    assert img.std() > 10  # not blank


def test_preview_synthetic_default(tmp_path):
    out = tmp_path / "g.png"
    assert preview.main(["--size", "32", "--n", "2", "--out", str(out)]) == 0
    assert cv2.imread(str(out)).shape == (2 * 32 + 3 * G, 3 * 32 + 4 * G, 3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--occlusion", "bogus"], "valid names"),
        (["--data-dir", "/no/such/folder"], "does not exist"),
        (["--task", "sr", "--degradation", "bsrgan"], "choose one of"),
    ],
)
def test_preview_errors_exit_2_without_traceback(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        preview.main(argv + ["--size", "32", "--out", str(tmp_path / "x.png")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_every_option_has_help():
    for action in preview.build_parser()._actions:
        assert action.help, action.dest
    np.testing.assert_array_equal(preview._tile(np.zeros((2, 2, 1), np.float32), 4),
                                  np.zeros((4, 4, 3), np.uint8))
