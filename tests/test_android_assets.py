"""android_demo_assets/: every shipped file runs and gives its documented outputs."""

from __future__ import annotations

import glob
import json
import os

import cv2
import pytest

from tflite import convert
from tflite.validate import check_samples

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "android_demo_assets")
MANIFESTS = sorted(glob.glob(os.path.join(ASSETS, "*", "*_samples.json")))


@pytest.mark.parametrize("manifest", MANIFESTS, ids=[os.path.relpath(m, ASSETS) for m in MANIFESTS])
def test_shipped_file_reproduces_its_expected_outputs(manifest):
    result = check_samples(manifest)
    assert result["ok"], result["problems"]
    samples = json.load(open(manifest))["samples"]
    assert 3 <= len(samples) <= 5


def test_export_android_round_trip_and_a_stale_output_is_caught(trained_tiny_run, tmp_path):
    from tfface.train.runner import load_generator
    from tflite.quantize import QuantizationConfig

    cfg, model = load_generator(trained_tiny_run)
    res = convert.convert_model(model, cfg, QuantizationConfig.for_int8(), str(tmp_path / "c"),
                                representative=convert.representative_inputs(cfg, 100))
    dest = convert.export_android(res, cfg, str(tmp_path / "assets"))
    manifest = os.path.join(dest, "model_int8_samples.json")
    ok = check_samples(manifest)
    assert ok["ok"] and ok["max_abs_levels"] == 0, ok
    m = json.load(open(manifest))
    assert len(m["samples"]) == convert.ANDROID_SAMPLES
    assert "synthetic" in m["sample_faces"]  # never photos from the training data
    assert os.path.exists(os.path.join(dest, "model_int8.tflite"))
    # A stale expected output (e.g. a model replaced without re-exporting) fails.
    exp = os.path.join(dest, m["samples"][0]["expected"])
    img = cv2.imread(exp)
    cv2.imwrite(exp, 255 - img)
    bad = check_samples(manifest)
    assert not bad["ok"] and "differ" in bad["problems"][0]
