"""The blind file that decides its own hole (tfface.export.blind): a tiny random-weight
segmenter and a tiny keep-known V-Net in one graph, converted to int8."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from tfface import keras
from tfface.config import resolve
from tfface.export.blind import (DepthToSpaceUpsample, build_blind, convert_blind,
                                 ellipse_rectangles, run_blind)
from tfface.segmenter.infer import face_support
from tfface.lite import LiteRunner
from tfface.models import get_arch

SUPPORT = (0.5, 0.56, 0.42, 0.50)  # restore's FACE_SUPPORT


def _tiny_vnet(keep_known: bool = True):
    cfg = resolve("vnet", "tiny", {"model": {"params": {
        "mask_input": True, "prefill": True, "keep_known": keep_known}}})
    return get_arch("vnet").build_generator(cfg)


def _tiny_segmenter():
    """Random weights, the logits' bias set so that about a third of a face is 'occluder'
    (a hole that is neither empty nor everything)."""
    from tfface.segmenter.model import build_segmenter

    seg = build_segmenter(32, [8, 16])
    layer = seg.get_layer("seg_logits")
    w, b = layer.get_weights()
    layer.set_weights([w * 40.0, b])
    small = np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in _faces(8)])
    z = keras.Model(seg.input, layer.output)(small).numpy()
    layer.set_weights([w * 40.0, b - np.quantile(z, 0.6)])
    return seg


def _faces(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random 'faces' in [-1, 1] (64 px) with a bright patch as occluder."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(-0.8, 0.8, (n, 8, 8, 3)).astype(np.float32)
    x = np.stack([cv2.resize(s, (64, 64), interpolation=cv2.INTER_CUBIC) for s in small])
    x[:, 36:52, 16:48] = 0.9
    return np.clip(x, -1, 1)


def test_depth_to_space_upsampling_is_nearest_and_the_ellipse_is_opencvs():
    x = np.random.default_rng(1).normal(size=(2, 5, 7, 3)).astype(np.float32)
    want = keras.layers.UpSampling2D(2, interpolation="nearest")(x).numpy()
    np.testing.assert_array_equal(DepthToSpaceUpsample(2)(x).numpy(), want)
    for grow in (1, 2, 3, 5):
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        union = np.zeros_like(k)
        for h, w in ellipse_rectangles(grow):
            union[grow - h // 2:grow + h // 2 + 1, grow - w // 2:grow + w // 2 + 1] = 1
        np.testing.assert_array_equal(union, k)
    assert ellipse_rectangles(2) == [(3, 5), (5, 1)]


@pytest.fixture(scope="module")
def tiny_blind():
    """A tiny random-weight segmenter and keep-known V-Net, their blind model and its
    int8 file (converted once for this module)."""
    keras.utils.set_random_seed(3)
    seg, vnet = _tiny_segmenter(), _tiny_vnet()
    model = build_blind(seg, vnet, support=SUPPORT, grow=2, edge_threshold=0.3)
    content, info = convert_blind(model, _faces(24, seed=1))
    return seg, vnet, model, content, info


def test_the_graph_is_the_two_models_in_sequence_and_its_int8_file_keeps_the_rest(tiny_blind):
    seg, vnet, model, content, info = tiny_blind
    assert [t.shape[-1] for t in model.outputs] == [3, 1]
    faces = _faces(12)
    restored, hole = model.predict(faces, verbose=0)

    # the two-model path as restore runs it: area shrink, segmenter, bilinear back, the
    # face ellipse, p > 0.5 joined by the pixels above 0.3 within 8 px of it (8-connected),
    # grown by OpenCV's elliptic element, the V-Net
    small = np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in faces])
    prob = seg.predict(small, verbose=0)[..., 0]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def decide(p):
        p = cv2.resize(p, (64, 64), interpolation=cv2.INTER_LINEAR) * face_support(64, SUPPORT)
        h, allowed = (p > 0.5).astype(np.uint8), (p > 0.3).astype(np.uint8)
        for _ in range(8):
            h = cv2.dilate(h, np.ones((3, 3), np.uint8)) & allowed
        return cv2.dilate(h, kernel)

    want = np.stack([decide(p) for p in prob])
    assert 0.05 < want.mean() < 0.6, want.mean()  # a real hole, real kept pixels
    core_only = np.stack([cv2.dilate(((cv2.resize(p, (64, 64), interpolation=cv2.INTER_LINEAR)
                                       * face_support(64, SUPPORT)) > 0.5).astype(np.uint8),
                                     kernel) for p in prob])
    assert np.mean(want != core_only) > 0.01  # the edge does add pixels to the hole
    assert np.mean(hole[..., 0] != want) < 0.002
    np.testing.assert_allclose(restored, vnet.predict([faces, hole], verbose=0), atol=1e-5)

    assert info["float_layers"] == ["blind_seg_in", "blind_hole", "hole_fill", "restored"]
    from tfface.export.harness import delegate_partitions

    # no RESIZE_NEAREST_NEIGHBOR, GREATER or int8 AVERAGE_POOL_2D left to split the graph
    assert delegate_partitions(content) == 1
    got, got_hole = run_blind(LiteRunner(content), faces)
    assert np.mean((got_hole > 0.5) != (hole > 0.5)) < 0.01
    q = lambda y: np.round((y + 1) * 127.5)  # noqa: E731
    assert np.mean(np.abs(q(got) - q(restored))) < 2.0
    # outside the hole it decided, the file returns the input bit for bit
    outside = got_hole[..., 0] < 0.5
    assert 0.3 < outside.mean() < 0.95
    np.testing.assert_array_equal(got[outside], faces[outside])
    assert np.abs(got - faces)[~outside].max() > 0.05  # and inside it, it does change pixels


def test_the_unsure_edge_joins_the_hole_as_restores_segmenter_decides_it():
    """HoleDecision's edge: pixels above 0.1 8-connected to the confident hole join it (as
    OccluderSegmenter.hole_from), within ``edge_steps`` px; a faint blob with no confident
    pixel stays out."""
    import types

    from tfface.export.blind import HoleDecision
    from tfface.segmenter.infer import OccluderSegmenter

    p = np.zeros((48, 48), np.float32)
    p[10:20, 10:20] = 0.9           # the confident hole
    p[8:22, 8:22] = np.maximum(p[8:22, 8:22], 0.3)  # its unsure rim, 2 px wide
    p[22:25, 22:25] = 0.2           # touching the rim's corner (21, 21) diagonally only
    p[30:40, 30:40] = 0.3           # a faint blob on its own
    p[14, 22:44] = 0.2              # a thin tail 22 px long
    ref = OccluderSegmenter.hole_from(types.SimpleNamespace(threshold=0.5, edge_threshold=0.1),
                                      p)
    assert ref[8, 8] and ref[23, 23] and ref[14, 43] and not ref[35, 35]

    def decide(steps, edge=0.1):
        layer = HoleDecision(48, 0.5, grow=0, edge_threshold=edge, edge_steps=steps)
        return layer(p[None, ..., None]).numpy()[0, ..., 0] > 0.5

    far = decide(40)
    np.testing.assert_array_equal(far, ref)  # reaching far enough: restore's hole exactly
    near = decide(8)  # the shipped reach: all but the tail's end
    assert near[8, 8] and near[23, 23] and not near[35, 35]
    assert near[14, 27] and not near[14, 28]  # 8 steps from the core, whose last x is 19
    np.testing.assert_array_equal(near & ~ref, np.zeros_like(ref))  # never beyond restore's
    np.testing.assert_array_equal(decide(8, edge=None), p > 0.5)  # off: the core alone
    cfg = HoleDecision(48, 0.5, edge_threshold=0.1, edge_steps=8).get_config()
    assert (cfg["edge_threshold"], cfg["edge_steps"]) == (0.1, 8)


def test_an_inpainter_that_does_not_keep_the_known_pixels_is_refused():
    with pytest.raises(ValueError, match="keep_known"):
        build_blind(_tiny_segmenter(), _tiny_vnet(keep_known=False))


def test_the_command_refuses_bad_settings_with_one_clear_line(tmp_path, capsys):
    from pipelines.export_blind import main

    assert main(["--data-dir", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.strip() == (f"error: --data-dir {tmp_path / 'nowhere'}: "
                                               "no such folder")
    assert main(["--data-dir", str(tmp_path), "--threshold", "1.5"]) == 2
    assert "--threshold must lie in (0, 1)" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path), "--edge-threshold", "0.7"]) == 2
    assert "--edge-threshold in (0, --threshold]" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path), "--edge-steps", "0"]) == 2
    assert "--edge-steps in 1-64" in capsys.readouterr().err
    # a low --threshold alone lowers the edge with it (as restore's segmenter), no error
    assert main(["--data-dir", str(tmp_path / "nowhere"), "--threshold", "0.05"]) == 2
    assert capsys.readouterr().err.startswith("error: --data-dir")
    assert main(["--data-dir", str(tmp_path), "--inpainter", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --inpainter {tmp_path}") and "Traceback" not in err


def test_restore_lets_the_files_own_hole_decide_what_changes(tiny_blind, tmp_path):
    """tfface-restore with a blind file that returns its hole: no segmenter is needed, and
    only the file's hole (feathered by restore's 2 px) changes photo pixels."""
    from tfface.export.blind import blind_card, fidelity, write_blind
    from tfface.faces import align as al
    from tfface.faces.detect import Face
    from tfface.imageio import to_float, to_uint8
    from tfface.restore.model import Restorer
    from tfface.restore.photo import FacePipeline

    _, _, model, content, info = tiny_blind
    path = str(tmp_path / "model_int8_mixed.tflite")
    card = blind_card(content, file=os.path.basename(path), segmenter_file="seg",
                      inpainter_file="vnet", keras_model=model, conversion=info,
                      fidelity=fidelity(model, content, _faces(2)), support=SUPPORT,
                      threshold=0.5, grow=2)
    write_blind(path, content, card)
    restorer = Restorer.load(path)
    assert restorer.spec.decides_hole and not restorer.spec.mask_input
    crop = to_uint8(_faces(1, seed=5)[0])
    restored, hole = restorer.restore_face_and_hole(crop)
    _, want = run_blind(LiteRunner(path), to_float(crop)[None])
    np.testing.assert_array_equal(hole, want[0, ..., 0] > 0.5)
    assert 0.05 < hole.mean() < 0.7
    np.testing.assert_array_equal(restored[~hole], crop[~hole])

    # a photo with that face at the template's framing, 2x its crop
    t = al.TEMPLATE.astype(np.float64) * 128.0
    photo = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_CUBIC)
    photo = cv2.copyMakeBorder(photo, 40, 40, 60, 60, cv2.BORDER_REFLECT)
    lm = (t + [60, 40]).astype(np.float32)
    face = Face(np.array([60, 40, 188, 168], np.float32), lm, 0.99)

    class OneFace:
        def detect(self, rgb):
            return [face]

    out, rep = FacePipeline(OneFace(), None).restore(restorer, photo)
    assert rep.restored == 1
    changed = np.any(out != photo, axis=-1)
    _, m = al.align_face(photo, lm, 64)
    weight = al.hole_weight(restorer.restore_face_and_hole(al.align_face(photo, lm, 64)[0])[1],
                            0, 2)
    reach = cv2.warpAffine(weight, al.invert(m), photo.shape[1::-1],
                           flags=cv2.INTER_LINEAR) > 0
    reach = cv2.dilate(reach.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert changed.sum() > 100 and not (changed & ~reach).any()

    # a clip of that photo: the tracked face gets the file's own hole on every frame (no
    # segmenter, no temporal smoothing of the hole), and nothing beyond it changes
    pipe = FacePipeline(OneFace(), None)
    pipe.start_video(25.0, detect_every=2)
    frames = [pipe.restore(restorer, photo)[0] for _ in range(3)]
    pipe.end_video()
    near = cv2.dilate(reach.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    for frame in frames:
        moved = np.any(frame != photo, axis=-1)
        assert moved.sum() > 100 and not (moved & ~near).any()
    assert pipe.last_report.restored == 1


def test_sample_faces_are_written_without_the_synthetic_source_banner(tiny_blind, tmp_path,
                                                                      monkeypatch, caplog):
    """The blind file's sample faces are synthetic on purpose (redistributable): writing them
    prints no banner telling the user they picked the synthetic training source, and each
    expected PNG is what the file returns for its input PNG."""
    from tfface.data.sources import synthetic
    from tfface.export.blind import blind_card, fidelity, write_blind, write_samples
    from tfface.imageio import to_float, to_uint8

    def read_image(p):
        return cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB)

    _, _, model, content, info = tiny_blind
    path = str(tmp_path / "model_int8_mixed.tflite")
    card = blind_card(content, file=os.path.basename(path), segmenter_file="seg",
                      inpainter_file="vnet", keras_model=model, conversion=info,
                      fidelity=fidelity(model, content, _faces(2)), support=SUPPORT,
                      threshold=0.5, grow=2, edge_threshold=0.3)
    assert any("0.3 8-connected" in step for step in card["hole"]["steps"])
    write_blind(path, content, card)
    monkeypatch.setattr(synthetic, "_SYNTHETIC_BANNER_SHOWN", False)
    with caplog.at_level("WARNING"):
        manifest = write_samples(path, card, 2)
    assert "SYNTHETIC" not in caplog.text and synthetic._SYNTHETIC_BANNER_SHOWN is False
    import json

    items = json.load(open(manifest))["samples"]
    assert len(items) == 2
    runner = LiteRunner(path)
    for item in items:
        x = read_image(os.path.join(tmp_path, item["inputs"]["occluded"]))
        want = to_uint8(runner.run_named({"occluded": to_float(x)[None]})[0])
        np.testing.assert_array_equal(read_image(os.path.join(tmp_path, item["expected"])), want)
