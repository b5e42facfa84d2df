"""A built wheel carries what `tfface-restore` needs: installed into a fresh virtual
environment, `tfface-restore photo.png` with no --model restores the face from a folder
outside the checkout, with the shipped V-Nets and occluder segmenter found as package data.

Offline: the wheel is built without build isolation and installed with --no-index
--no-deps; the new environment reaches the dependencies (TensorFlow, ...) through a
path entry to this environment's site-packages, so nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import cv2
import numpy as np
import pytest

from tfface.shipped import ASSETS, DEFAULT_MODEL, DEFAULT_SEGMENTER, REALISM_MODEL, shipped_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("pyproject.toml", "setup.cfg", "README.md", "tfface", "pipelines", "tflite")
HOLE = ((250, 175), (45, 30))  # an ellipse over the astronaut's mouth and chin


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _masked_photo(path) -> np.ndarray:
    from skimage import data

    rgb = data.astronaut().copy()
    cv2.ellipse(rgb, *HOLE, 0, 0, 360, (170, 200, 230), -1)
    cv2.imwrite(str(path), rgb[..., ::-1])
    return rgb


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    """``(wheel, python of a fresh venv with the wheel installed, its bin folder)``."""
    missing = [m for m in ("setuptools", "wheel") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the build backend is not installed here ({', '.join(missing)})")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:  # a copy (links resolved): the build writes nothing into the checkout
        full = os.path.join(ROOT, name)
        if os.path.isdir(full):
            shutil.copytree(full, src / name, ignore=ignore)
        else:
            shutil.copy2(full, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--no-index", "--wheel-dir", str(tmp / "dist"), str(src)])
    wheel = next((tmp / "dist").glob("tfface-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
          "--no-index", "--no-deps", str(wheel)])
    # The dependencies come from this environment: a path entry after the venv's own
    # site-packages (a .pth line adds the folder; the .pth files inside it, e.g. the
    # editable install of the checkout, are not run).
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    with open(os.path.join(site.stdout.strip(), "deps-from-dev.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    return wheel, python, venv / "bin"


def test_the_wheel_holds_the_shipped_files_themselves(wheel_env):
    wheel, _, _ = wheel_env
    with zipfile.ZipFile(wheel) as z:
        sizes = {i.filename: i.file_size for i in z.infolist()}
    from tfface.shipped import SR_MODELS, SR_REALISM_MODELS

    for parts in (DEFAULT_MODEL, REALISM_MODEL, DEFAULT_SEGMENTER, *SR_MODELS.values(),
                  *SR_REALISM_MODELS.values()):
        name = "/".join(("tfface", ASSETS, *parts))
        assert sizes.get(name) == os.path.getsize(shipped_file(*parts)), name
        card = name[: -len(".tflite")] + ".json"
        assert sizes.get(card, 0) > 1000, card
    assert sizes.get("tfface/faces/template.json", 0) > 100


def test_installed_restore_with_no_model_restores_the_face_outside_the_checkout(
        wheel_env, tmp_path):
    from pipelines import restore as restore_cli

    _, python, bin_dir = wheel_env
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rgb = _masked_photo(elsewhere / "photo.png")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = _run([str(python), "-c", "import importlib.util as u; "
                  "print(u.find_spec('tfface').origin); print(u.find_spec('pipelines').origin)"],
                 cwd=elsewhere, env=env).stdout.split()
    assert all(p.startswith(str(python.parent.parent)) for p in where), where  # not the checkout
    proc = _run([str(bin_dir / "tfface-restore"), "photo.png", "--quiet"], cwd=elsewhere, env=env)
    assert "Restored 1 file(s)" in proc.stdout, proc.stdout
    out = cv2.imread(str(elsewhere / "restored" / "photo_png.png"))[..., ::-1]
    hole = np.zeros(rgb.shape[:2], np.uint8)
    cv2.ellipse(hole, *HOLE, 0, 0, 360, 1, -1)
    changed = np.abs(out.astype(int) - rgb.astype(int)).max(axis=2) > 8
    assert changed[hole > 0].mean() > 0.5  # the occluder is painted over ...
    assert changed[:100].mean() < 0.01  # ... the photo far from the face is left alone
    # The same pixels as the checkout's own default restore: the wheel carries the same files.
    assert restore_cli.main([str(elsewhere / "photo.png"), "--out", str(tmp_path / "here"),
                             "--quiet"]) == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "here" / "photo_png.png")),
                                  out[..., ::-1])
