"""android_demo_assets/: every shipped file runs, gives its documented outputs and its
model card tells the truth."""

from __future__ import annotations

import glob
import json
import os
import shutil

import cv2
import pytest

from tfface.cards import INPUT_NORMALIZATION, card_problems
from tfface.export.android import ANDROID_SAMPLES, export_android
from tfface.export.convert import convert_model, representative_inputs
from tfface.export.metadata import op_inventory
from tfface.export.validate import check_samples
from tflite import convert

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "android_demo_assets")
# Every shipped model file (int8, int8 with float layers, fp16, ...): each must come
# with its card and its samples.
SHIPPED = sorted(glob.glob(os.path.join(ASSETS, "*", "*.tflite")))
IDS = [os.path.relpath(p, ASSETS) for p in SHIPPED]


def test_assets_ship_models():
    assert len(SHIPPED) >= 2, SHIPPED  # at least the V-Net and the SRGAN


@pytest.mark.parametrize("path", SHIPPED, ids=IDS)
def test_shipped_file_reproduces_its_expected_outputs(path):
    manifest = os.path.splitext(path)[0] + "_samples.json"
    assert os.path.exists(manifest), f"{os.path.basename(path)} ships without its samples"
    result = check_samples(manifest)
    assert result["ok"], result["problems"]
    m = json.load(open(manifest))
    assert m["model"] == os.path.basename(path)
    assert 3 <= len(m["samples"]) <= 5


@pytest.mark.parametrize("path", SHIPPED, ids=IDS)
def test_shipped_card_tells_the_truth(path):
    """Each input described by what it is, with its own range and formula; the embedded
    card equals the JSON one; no absolute machine path anywhere."""
    assert card_problems(path) == []
    card = json.load(open(os.path.splitext(path)[0] + ".json"))
    kinds = {i["key"]: i["kind"] for i in card["inputs"]}
    assert kinds in ({"occluded": "image", "mask": "mask"}, {"occluded": "image"},
                     {"lr": "low-resolution image"}), kinds
    mode = card["quantization"]["mode"]
    ops = op_inventory(path)
    if mode == "fp16":  # the GPU-delegate file: float compute throughout
        assert ops["integer_ops"] == 0
    else:
        assert mode == "int8" and ops["integer_ops"] > 0
        assert set(ops["float_ops"]) == set() or card["quantization"]["float_layers"]


def test_card_check_catches_a_mask_described_as_rgb_and_machine_paths(tmp_path):
    """The card the V-Net shipped with before: mask as an RGB image in [-1, 1] and the
    paths of the machine that made it; both are caught."""
    src = os.path.join(ASSETS, "vnet", "model_int8_mixed.tflite")
    path = str(tmp_path / "model_int8_mixed.tflite")
    shutil.copy(src, path)
    card = json.load(open(os.path.join(ASSETS, "vnet", "model_int8_mixed.json")))
    mask = next(i for i in card["inputs"] if i["key"] == "mask")
    mask.update(layout="NHWC, RGB", value_range=[-1.0, 1.0],
                normalization=INPUT_NORMALIZATION, kind="image")
    card["source_run"] = "/work/runs/vnet-ship-a"
    card["training_data"]["description"] = "face photos from folder /work/shared/data/faces-dev"
    problems = card_problems(path, card)
    assert any("input 'mask' (mask): card says layout 'NHWC, RGB'" in p for p in problems)
    assert any("value_range [-1.0, 1.0]" in p for p in problems)
    assert any("'/work/runs/vnet-ship-a'" in p for p in problems)
    assert any("/work/shared/data/faces-dev" in p for p in problems)
    assert any("embedded" in p for p in problems)


def test_export_android_round_trip_and_a_stale_output_is_caught(trained_tiny_run, tmp_path,
                                                                 caplog, monkeypatch):
    from tfface.data.sources import synthetic
    from tfface.export.quantize import QuantizationConfig
    from tfface.rundir import load_generator

    cfg, model = load_generator(trained_tiny_run)
    res = convert_model(model, cfg, QuantizationConfig.for_int8(), str(tmp_path / "c"),
                        representative=representative_inputs(cfg, 100),
                        source_run=trained_tiny_run)
    # The sample faces are synthetic on purpose: no banner telling the user that they
    # picked the synthetic source, and a later real use of it still shows the banner.
    # caplog holds the whole test so far: the calibration above used the run's own
    # (synthetic) source and showed the banner if this process had not shown it yet (under
    # xdist, when the other worker built trained_tiny_run); only export_android is judged.
    monkeypatch.setattr(synthetic, "_SYNTHETIC_BANNER_SHOWN", False)
    caplog.clear()
    with caplog.at_level("WARNING"):
        dest = export_android(res, cfg, str(tmp_path / "assets"))
    assert "SYNTHETIC" not in caplog.text
    assert synthetic._SYNTHETIC_BANNER_SHOWN is False
    with caplog.at_level("WARNING"):
        synthetic.SyntheticSource(cfg.data)
    assert "SYNTHETIC" in caplog.text
    manifest = os.path.join(dest, "model_int8_samples.json")
    ok = check_samples(manifest)
    assert ok["ok"] and ok["max_abs_levels"] == 0, ok
    # A freshly exported card passes the same truth check as the shipped ones, even
    # though the run lives at an absolute path outside the working directory.
    assert card_problems(os.path.join(dest, "model_int8.tflite")) == []
    assert json.load(open(os.path.join(dest, "model_int8.json")))["source_run"] == "vnet-tiny"
    m = json.load(open(manifest))
    assert len(m["samples"]) == ANDROID_SAMPLES
    assert "synthetic" in m["sample_faces"]  # never photos from the training data
    assert os.path.exists(os.path.join(dest, "model_int8.tflite"))
    named = export_android(res, cfg, str(tmp_path / "assets"), folder="vnet_realism")
    assert named == os.path.join(str(tmp_path / "assets"), "vnet_realism")
    assert check_samples(os.path.join(named, "model_int8_samples.json"))["ok"]
    # A stale expected output (e.g. a model replaced without re-exporting) fails.
    exp = os.path.join(dest, m["samples"][0]["expected"])
    img = cv2.imread(exp)
    cv2.imwrite(exp, 255 - img)
    bad = check_samples(manifest)
    assert not bad["ok"] and "differ" in bad["problems"][0]


def test_android_export_refuses_a_folder_that_holds_model_files(trained_tiny_run, tmp_path,
                                                                 monkeypatch, capsys):
    """--android never silently replaces a file (the shipped ones are tfface-restore's
    defaults): a folder that holds .tflite files is refused before anything is converted,
    unless --replace-assets is given."""
    from tfface.export.android import android_folder
    from tfface.rundir import load_generator

    cfg, _ = load_generator(trained_tiny_run)
    monkeypatch.chdir(tmp_path)
    dest = tmp_path / "android_demo_assets" / android_folder(cfg)
    dest.mkdir(parents=True)
    (dest / "model_int8.tflite").write_bytes(b"the shipped file")
    out = tmp_path / "out"
    assert convert.main(["--run", trained_tiny_run, "--int8", "--android",
                         "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--replace-assets" in err and "model_int8.tflite" in err, err
    assert (dest / "model_int8.tflite").read_bytes() == b"the shipped file"
    assert not out.exists() or not any(out.glob("*.tflite"))
    # --android-folder NAME (a second file of one kind, e.g. srgan_realism): the same rule
    # for that folder; a name that is not a plain folder name is refused before anything
    other = tmp_path / "android_demo_assets" / "vnet_realism"
    other.mkdir()
    (other / "model_int8.tflite").write_bytes(b"another shipped file")
    assert convert.main(["--run", trained_tiny_run, "--int8", "--android", "--android-folder",
                         "vnet_realism", "--out-dir", str(out)]) == 2
    assert "vnet_realism" in capsys.readouterr().err
    for bad, why in ((["--android", "--android-folder", "../x"], "takes a plain folder name"),
                     (["--android-folder", "vnet_x"], "add --android")):
        assert convert.main(["--run", trained_tiny_run, "--int8", *bad,
                             "--out-dir", str(out)]) == 2
        assert why in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert not out.exists() or not any(out.glob("*.tflite"))


def test_android_folder_keeps_sr_scales_and_face_sizes_apart():
    from tfface.config import Config
    from tfface.export.android import android_folder

    def cfg(arch, task, scale, size=128):
        c = Config()
        c.model.arch, c.data.task, c.data.scale, c.data.image_size = arch, task, scale, size
        return c

    assert android_folder(cfg("srgan", "sr", 4)) == "srgan"  # the shipped x4 folder
    assert android_folder(cfg("srgan", "sr", 2, 64)) == "srgan_x2"  # 32 -> 64, shipped
    assert android_folder(cfg("srgan", "sr", 4, 256)) == "srgan_lr64"  # 64 px input
    assert android_folder(cfg("srgan", "sr", 2, 128)) == "srgan_x2_lr64"
    assert android_folder(cfg("vnet", "inpaint", 1)) == "vnet"  # the shipped 128 px folder
    assert android_folder(cfg("vnet", "inpaint", 1, 64)) == "vnet64"
    assert android_folder(cfg("vnet", "inpaint", 1, 256)) == "vnet256"


def test_recard_rewrites_an_old_card_and_leaves_the_model_untouched(tmp_path, capsys):
    from tfface.cards import embed_card, read_card, strip_card

    src = os.path.join(ASSETS, "vnet", "model_int8_mixed.tflite")
    path = str(tmp_path / "model_int8_mixed.tflite")
    card = json.load(open(os.path.join(ASSETS, "vnet", "model_int8_mixed.json")))
    for entry in card["inputs"]:  # the card format before: every input an RGB image
        for k in ("key", "kind", "description"):
            entry.pop(k)
        entry.update(layout="NHWC, RGB", value_range=[-1.0, 1.0],
                     normalization=INPUT_NORMALIZATION)
    card["source_run"] = "/work/runs/vnet-ship-a"
    card["training_data"]["description"] = "face photos from folder /work/shared/data/faces-dev"
    model = strip_card(open(src, "rb").read())
    open(path, "wb").write(embed_card(model, card))
    json.dump(card, open(str(tmp_path / "model_int8_mixed.json"), "w"))
    assert card_problems(path)  # the old card is caught ...

    assert convert.main(["--recard", path]) == 0
    assert "mask = mask" in capsys.readouterr().out
    assert card_problems(path) == []  # ... and the new one tells the truth
    assert strip_card(open(path, "rb").read()) == model  # the model itself is unchanged
    new = read_card(path)
    assert new["source_run"] == "vnet-ship-a"
    assert new["training_data"]["description"] == "face photos from a folder named 'faces-dev'"
    assert new["fidelity"] == card["fidelity"] and new["ops"] == card["ops"]
