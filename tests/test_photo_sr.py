"""SR of whole photos: zoomed training crops (data.sr_crop), per-element downscale kernels,
any-size tiling, the native-resolution face path and the photo benchmark's scenes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import tfface  # noqa: F401  (before tensorflow: selects tf_keras)
import tensorflow as tf

from tfface.config import Config, DataConfig
from tfface.data import degrade as deg
from tfface.data import pipeline, sr_crop
from tfface.faces.detect import Face
from tfface.restore.sr import NativeSRPipeline, count_tiles, sr_image, tile_starts
from tfface.restore.model import ModelSpec

SEED = tf.constant([3, 5], tf.int64)


# ------------------------------------------------------------------ data.sr_crop


def test_resolve_crop_defaults_and_errors():
    assert sr_crop.resolve_crop({}) is None and sr_crop.resolve_crop(None) is None
    got = sr_crop.resolve_crop({"zoom": [1, 2], "downscale": "area"})
    assert got == {"source_size": 256, "zoom": (1.0, 2.0), "whole_prob": 0.25,
                   "downscale": ("area",)}
    for bad, match in [({"zom": [1, 2]}, "valid keys: downscale, source_size"),
                       ({"zoom": [2, 1]}, "0 < lo <= hi"), ({"zoom": [0, 1]}, "0 < lo"),
                       ({"whole_prob": 1.5}, "probability"), ({"source_size": 8}, ">= 16"),
                       ({"downscale": ["nearest"]}, "list methods")]:
        with pytest.raises(ValueError, match=match):
            sr_crop.resolve_crop(bad)


def _ramp(side: int) -> np.ndarray:
    """R = 2·x, G = 2·y, B = 100: a crop's first pixel gives its offset, the slope its zoom."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    return np.stack([2 * xx, 2 * yy, np.full_like(xx, 100)], -1)


@pytest.mark.parametrize("zoom", [0.75, 2.0])
def test_random_crop_window_follows_zoom(zoom):
    img = _ramp(128)
    crop = sr_crop.resolve_crop({"zoom": [zoom, zoom], "whole_prob": 0.0, "source_size": 128})
    offsets = set()
    for i in range(6):
        out = sr_crop.random_crop(img, tf.constant([i, 1], tf.int64), 48, crop).numpy()
        assert out.shape == (48, 48, 3)
        # Source px per output px = 1 / zoom: the ramp's slope inside the crop is 2 / zoom.
        slope = np.mean(out[10:38, 37, 0] - out[10:38, 10, 0]) / 27
        assert slope == pytest.approx(2.0 / zoom, rel=0.03)
        offsets.add(int(round(out[24, 0, 0])))
    assert len(offsets) > 2  # windows at random places


def test_random_crop_whole_face_is_the_area_resize():
    img = np.random.default_rng(0).integers(0, 256, (96, 96, 3)).astype(np.float32)
    crop = sr_crop.resolve_crop({"whole_prob": 1.0, "source_size": 96})
    out = sr_crop.random_crop(img, SEED, 48, crop).numpy()
    want = tf.image.resize(img, [48, 48], method="area").numpy()
    np.testing.assert_allclose(out, want, atol=1e-3)


def test_degrade_draws_the_downscale_kernel_per_element():
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3)).astype(np.float32)
    d = DataConfig()
    d.scale, d.degradation = 4, "none"
    ref = {m: deg.downscale(img, 4, m).numpy() for m in ("area", "bicubic")}
    seen = set()
    for i in range(12):
        got = deg.degrade(img, tf.constant([i, 9], tf.int64), d, methods=("area", "bicubic"))
        match = [m for m, r in ref.items() if np.allclose(got.numpy(), r, atol=1e-4)]
        assert len(match) == 1
        seen.add(match[0])
    assert seen == {"area", "bicubic"}
    d.sr_downscale = "area"
    np.testing.assert_array_equal(deg.degrade(img, SEED, d).numpy(),
                                  deg.degrade(img, SEED, d, methods=("area",)).numpy())


def _sr_cfg(**data) -> Config:
    cfg = Config()
    cfg.data.source, cfg.data.image_size, cfg.data.eval_count = "synthetic", 32, 4
    cfg.data.synthetic_count, cfg.data.task, cfg.data.scale = 16, "sr", 4
    for k, v in data.items():
        setattr(cfg.data, k, v)
    cfg.train.batch_size = 4
    return cfg


def _first(cfg, split):
    return {k: v.numpy() for k, v in next(iter(pipeline.make_dataset(cfg, split))).items()}


def test_pipeline_sr_crop_train_only_and_deterministic():
    plain, cropped = _sr_cfg(), _sr_cfg(sr_crop={"source_size": 64, "zoom": [1.0, 2.0],
                                                 "whole_prob": 0.0})
    a, b = _first(cropped, "train"), _first(cropped, "train")
    assert a["clean"].shape == (4, 32, 32, 3) and a["lr"].shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(a["clean"], b["clean"])
    np.testing.assert_array_equal(a["lr"], b["lr"])
    p = _first(plain, "train")
    assert np.abs(a["clean"] - p["clean"]).mean() > 0.05  # zoomed crops, not whole faces
    # The eval split (validation, pipelines.evaluate) stays the whole aligned face.
    np.testing.assert_array_equal(_first(cropped, "eval")["lr"], _first(plain, "eval")["lr"])
    with pytest.raises(ValueError, match="valid keys"):
        pipeline.make_dataset(_sr_cfg(sr_crop={"zooom": [1, 2]}), "train")


# ------------------------------------------------------------------ tiling and the photo path


class Cubic:
    """A stand-in SR model: bicubic enlargement plus ``shift`` grey levels."""

    def __init__(self, side=32, k=4, shift=0):
        self.spec, self.name, self.shift, self.calls = ModelSpec("sr", side, side * k, k), "cubic", shift, 0

    def for_face(self, native):
        """One file for every face (tfface.restore.model.FaceModel)."""
        return self

    def restore_face(self, face, mask=None):
        assert face.shape[:2] == (self.spec.input_size,) * 2
        self.calls += 1
        n = self.spec.output_size
        up = cv2.resize(face, (n, n), interpolation=cv2.INTER_CUBIC).astype(np.int32)
        return np.clip(up + self.shift, 0, 255).astype(np.uint8)


def test_tile_starts_cover_and_end_flush():
    assert tile_starts(20, 32, 8) == [0]
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    with pytest.raises(ValueError, match="smaller than the tile"):
        tile_starts(100, 8, 8)


@pytest.mark.parametrize("hw", [(50, 90), (10, 40)])
def test_sr_image_any_size_matches_whole_image_bicubic(hw):
    rgb = cv2.GaussianBlur(np.random.default_rng(2).integers(0, 256, hw + (3,)).astype(np.uint8),
                           (5, 5), 1.5)
    model = Cubic()
    out = sr_image(model, rgb)
    assert out.shape == (hw[0] * 4, hw[1] * 4, 3)
    assert model.calls == count_tiles(*hw, 32)
    want = cv2.resize(rgb, (hw[1] * 4, hw[0] * 4), interpolation=cv2.INTER_CUBIC)
    inner = (slice(16, -16), slice(16, -16))
    diff = np.abs(out[inner].astype(int) - want[inner].astype(int))
    assert diff.mean() < 0.6 and diff.max() <= 8  # tiles blend into one image


class Lopsided(Cubic):
    """Bicubic plus a left-to-right ramp of 0..40 grey levels across each output tile: a
    model that is not mirror-symmetric, whose mirrored run has the ramp the other way."""

    def restore_face(self, face, mask=None):
        up = super().restore_face(face).astype(np.int32)
        ramp = np.linspace(0, 40, up.shape[1]).round().astype(np.int32)[None, :, None]
        return np.clip(up + ramp, 0, 255).astype(np.uint8)


def test_sr_image_mirror_averages_the_mirrored_run():
    rgb = np.full((40, 40, 3), 100, np.uint8)
    plain, model = sr_image(Lopsided(), rgb), Lopsided()
    mirrored = sr_image(model, rgb, mirror=True)
    assert model.calls == 2 * count_tiles(40, 40, 32)
    # Alone the ramp shows (tiles blended: 100 + 0..40); mirrored and averaged, each
    # pixel gets ramp(x) + ramp(side - 1 - x) = 40 over two, i.e. a flat 120.
    assert plain.max() - plain.min() > 20
    assert np.abs(mirrored.astype(int) - 120).max() <= 1
    # On a mirror-symmetric model the average is the plain result.
    photo = np.random.default_rng(4).integers(0, 256, (40, 56, 3)).astype(np.uint8)
    np.testing.assert_array_equal(sr_image(Cubic(), photo, mirror=True),
                                  sr_image(Cubic(), photo))


class OneFace:
    def __init__(self, face):
        self.face = face

    def detect(self, rgb):
        return [self.face]


def _face(cx, cy, eye):
    """A Face whose five landmarks are the template's, scaled to an eye distance ``eye``."""
    from tfface.faces import align as al

    t = al.TEMPLATE.astype(np.float64)
    lm = (t - t[:2].mean(0)) * eye / (t[1, 0] - t[0, 0]) + [cx, cy]
    box = np.array([lm[:, 0].min() - eye, lm[:, 1].min() - eye, lm[:, 0].max() + eye,
                    lm[:, 1].max() + eye], np.float32)
    return Face(box, lm.astype(np.float32), 0.99)


@pytest.mark.parametrize("background", ["bicubic", "model"])
def test_native_pipeline_pastes_the_face_and_chooses_the_background(background):
    rgb = np.full((60, 100, 3), 120, np.uint8)
    face = _face(40, 30, 6)  # a small face: native crop smaller than the model's 32 px
    pipe = NativeSRPipeline(OneFace(face), background=background, min_face=4)
    out, rep = pipe.restore(Cubic(shift=20), rgb)
    assert out.shape == (240, 400, 3) and rep.restored == 1
    cx, cy = 40 * 4, 30 * 4
    assert out[cy, cx, 0] == 140  # the model's output at the face
    assert out[4, 396, 0] == (140 if background == "model" else 120)  # far from the face
    with pytest.raises(ValueError, match="background"):
        NativeSRPipeline(OneFace(face), background="lanczos")


def test_face_only_weight_covers_the_face_square_and_nothing_else():
    from tfface.faces import align as al
    from tfface.restore.sr import face_only_weight

    w = face_only_weight(128, 60.0)
    assert w.shape == (128, 128) and w[64, 64] == 1.0
    assert w[:34].max() == 0 and w[94:].max() == 0 and w[:, :34].max() == 0  # outside: 0
    assert np.array_equal(w[34:94, 34:94], al.face_weight(60))  # the face's own weight
    assert np.array_equal(face_only_weight(128, 200.0), al.face_weight(128))  # covers all


class Bars:
    """A tqdm-like factory that records each bar's total and updates."""

    def __init__(self):
        self.bars = []

    def __call__(self, total, desc=""):
        bar = {"total": total, "done": 0, "closed": False, "desc": desc}
        self.bars.append(bar)

        class Bar:
            def update(self, n=1):
                bar["done"] += n

            def close(self):
                bar["closed"] = True

        return Bar()


def test_native_pipeline_keeps_bicubic_around_a_small_face_and_shows_progress():
    rng = np.random.default_rng(4)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (80, 120, 3)).astype(np.uint8), (5, 5), 2)
    face = _face(60, 40, 5)  # native framing ~ 14 px: the 32 px crop is mostly context
    bars = Bars()
    pipe = NativeSRPipeline(OneFace(face), min_face=4, progress=bars)
    out, rep = pipe.restore(Cubic(shift=20), rgb)
    bic = cv2.resize(rgb, (480, 320), interpolation=cv2.INTER_CUBIC)
    assert rep.restored == 1
    assert int(out[160, 240, 0]) == min(255, int(bic[160, 240, 0]) + 20)  # the face: model
    # 12 LR px from the face's centre: inside the 32 px crop, outside the face's square
    assert np.array_equal(out[160, 240 + 48], bic[160, 240 + 48])
    assert bars.bars == [{"total": 1, "done": 1, "closed": True, "desc": "face 32 px"}]
    big = _face(60, 40, 14)  # a face larger than the model's input: tiles, one bar
    bars = Bars()
    NativeSRPipeline(OneFace(big), min_face=4, progress=bars).restore(Cubic(), rgb)
    (bar,) = bars.bars
    assert bar["total"] > 1 and bar["done"] == bar["total"] and bar["closed"]


# ------------------------------------------------------------------ the benchmark's scenes


def test_compose_scene_sizes_boxes_and_no_overlap():
    from skimage import data

    from benchmarks import photo_sr

    src = {"rgb": cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA),
           "box": np.array([70.0, 20.0, 130.0, 100.0]), "name": "astronaut"}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        hr, faces, mask = photo_sr.compose_scene([src], rng, (192, 256), 4, (8, 14), 4, "flat")
        assert hr.shape == (192, 256, 3) and hr.dtype == np.uint8 and faces
        for f in faces:
            assert 8 <= f["lr_size"] <= 14.01
            assert f["upscale"] == pytest.approx(f["lr_size"] * 4 / 80, rel=0.05)
            x0, y0, x1, y1 = f["box"]
            assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 192 and mask[int(y0), int(x0)]
        assert mask.sum() < hr.shape[0] * hr.shape[1]
        lr = photo_sr.shrink(hr, 4)
        assert lr.shape == (48, 64, 3)


@pytest.mark.parametrize("upscale", [1.0, 2.0])
def test_scene_square_cuts_the_source_eval_crop_back_out(upscale):
    """The identity crops: each scene face cut back out as its source's eval crop (the
    photo's centre square); at upscale 1 the crop's middle is the source's, bit for bit."""
    from skimage import data

    from benchmarks import photo_sr

    rgb = cv2.resize(data.astronaut(), (178, 218), interpolation=cv2.INTER_AREA)  # CelebA's shape
    src = {"rgb": rgb, "box": np.array([60.0, 50.0, 120.0, 130.0]), "name": "a.jpg"}
    lr = 80 * upscale / 4
    hr, faces, _ = photo_sr.compose_scene([src], np.random.default_rng(3), (480, 640), 4,
                                          (lr, lr + 1e-9), 1, "flat")
    (f,) = faces
    assert f["upscale"] == pytest.approx(upscale, rel=0.01)
    assert f["square"][2] == pytest.approx(178 * upscale, rel=0.01)
    want = photo_sr.centre_square(rgb, 128)
    got = photo_sr.cut_square(hr, f["square"], 128)
    inner = np.s_[24:96, 24:104]  # inside the patch (centred on the face) and its soft edge
    assert photo_sr.psnr(want[inner], got[inner]) > (60 if upscale == 1 else 32)
    assert photo_sr.psnr(want, photo_sr.cut_square(hr, (0, 0, 178 * upscale), 128)) < 20
    # A square leaving the image is padded, not shifted.
    edge = photo_sr.cut_square(hr, (-20, -20, 60), 60)
    assert edge.shape == (60, 60, 3) and not edge[:20, :20].any()


class _MeanColour:
    """An embedder whose embedding is a crop's mean colour (Euclidean, like dlib's)."""

    name = "mean-colour"

    def embed(self, faces):
        return np.asarray(faces, np.float32).mean(axis=(1, 2))

    def similarity(self, a, b):
        from tfface.identity.verify import negative_distance

        return negative_distance(a, b)


def test_identity_report_tpr_of_each_variant_and_size_bin():
    """Ten people with two photos each, one colour each 20 levels apart; probes are the
    first photos, whose crops are moved 25 levels off (green) in some variants: those
    genuine pairs fall below the threshold the HR faces' impostor pairs fix, no impostor
    comes above it."""
    from benchmarks import photo_sr

    def crop(person, green=0):
        return np.broadcast_to(np.array([20 * person, green, 0], np.uint8), (8, 8, 3))

    people = {f"{ab}{i}.jpg": str(i) for i in range(10) for ab in "ab"}
    names = sorted(people)
    gallery = np.stack([crop(int(people[n])) for n in names])
    rows = [{"name": f"a{i}.jpg", "lr_size": 25.0 if i < 5 else 50.0,
             "crops": {"HR": crop(i), "bicubic": crop(i, 25 if i < 4 else 0),
                       "native": crop(i, 25 if i < 2 else 0)}}
            for i in range(10)]
    rows.append({"name": "unlisted.jpg", "lr_size": 30.0, "crops": rows[0]["crops"]})
    assert photo_sr.identity_sources("", {**people, "c.jpg": "11"}) == set(people)
    rep = photo_sr.identity_report(_MeanColour(), rows, ["native"], names, gallery, people)
    v = rep["variants"]
    assert rep["probes"] == 10 and rep["genuine_pairs"] == 10 and rep["impostor_pairs"] == 180
    assert (v["HR"]["tpr"], v["bicubic"]["tpr"], v["native"]["tpr"]) == (1.0, 0.6, 0.8)
    assert v["HR"]["fpr"] <= 0.01 and v["bicubic"]["fpr"] == v["native"]["fpr"] == 0.0
    assert rep["by_group"]["20-31"]["bicubic"]["tpr"] == pytest.approx(0.2)
    assert rep["by_group"]["48-71"]["bicubic"]["tpr"] == 1.0
    assert rep["by_group"]["20-31"]["native"]["tpr"] == pytest.approx(0.6)
    # Each variant also at its own 1 % point; printed beside the shared threshold's.
    assert all(0.0 <= v[n]["tpr_own"] <= 1.0 for n in v) and v["HR"]["tpr_own"] == 1.0
    import io
    buf = io.StringIO()
    photo_sr.print_identity(rep, out=buf)
    line = [t for t in buf.getvalue().splitlines() if "own 1% FPR" in t]
    assert len(line) == 1 and f"native {v['native']['tpr_own']:.3f}" in line[0]
    # Pair by pair against bicubic: the pairs each accepts alone account for the TPR gap.
    p = rep["paired"]["native"]
    assert set(rep["paired"]) == {"native"} and p["baseline"] == "bicubic"
    assert (p["only_variant"], p["only_baseline"], p["p_value"]) == (2, 0, 0.5)
    paired = [t for t in buf.getvalue().splitlines() if "pair by pair" in t]
    assert len(paired) == 1 and f"{p['only_variant']} genuine pairs accepted only by native" \
        in paired[0] and "p = 0.5)" in paired[0]


def test_benchmark_proxies_count_model_calls_through_the_restore_path():
    from benchmarks import photo_sr
    from tfface.restore.photo import FacePipeline

    rgb = np.full((60, 100, 3), 120, np.uint8)
    model = photo_sr.Timed(Cubic(shift=10))
    out, rep = FacePipeline(OneFace(_face(50, 30, 10)), min_face=4).restore(model, rgb)
    assert rep.restored == 1 and model.calls >= 1 and model.seconds > 0
    x2 = photo_sr.Shrunk(Cubic(shift=10), 2)
    out, rep = FacePipeline(OneFace(_face(50, 30, 10)), min_face=4).restore(x2, rgb)
    assert out.shape == (120, 200, 3) and rep.restored == 1 and out[60, 100, 0] == 130


def test_benchmark_runs_a_ladder_of_sr_files_as_restore_does():
    """photo_sr --model A B: a small face goes to the 32 px file, a large one to the 64 px
    file's tiles, each file's calls counted in one total (x2 through Shrunk too)."""
    from benchmarks import photo_sr
    from tfface.restore.model import RestorerLadder

    class Counted(Cubic):
        pass

    small, big = Counted(32, shift=10), Counted(64, shift=20)

    class Ladder(RestorerLadder):
        def __init__(self):  # the real for_face over stand-ins (no files to load)
            self.restorers, self.spec, self.name = [small, big], big.spec, "ladder"

    rgb = np.full((400, 400, 3), 120, np.uint8)
    model = photo_sr.Timed(Ladder())
    out, rep = NativeSRPipeline(OneFace(_face(40, 40, 5)), min_face=4).restore(model, rgb)
    assert rep.restored == 1 and (small.calls, big.calls) == (1, 0) and model.calls == 1
    out, rep = NativeSRPipeline(OneFace(_face(200, 200, 60)), min_face=4).restore(model, rgb)
    assert big.calls >= 4 and small.calls == 1 and model.calls == 1 + big.calls
    model.calls = model.seconds = 0  # time_photo's reset between repeats
    assert model.for_face(300).calls == 0 and model.for_face(300).seconds == 0
    assert out[800, 800, 0] == 140  # the big file's +20 over the face's middle
    x2 = photo_sr.Shrunk(Ladder(), 2)
    assert x2.for_face(20).inner is small and x2.for_face(300).inner is big
    assert x2.for_face(300).spec.output_size == 128


def test_restore_cli_sends_sr_models_through_the_native_path():
    from pipelines import restore
    from tfface.restore.photo import FacePipeline
    from tfface.restore.model import Restorer

    def fake(task):
        return Restorer(lambda x: x, ModelSpec(task, 32, 128 if task == "sr" else 32,
                                               4 if task == "sr" else 1), "fake")

    args = restore.build_parser().parse_args(["x.png", "--model", "m", "--mask", "h.png"])
    sr = restore._locator(args, fake("sr"))
    assert isinstance(sr, NativeSRPipeline) and sr.background == "bicubic"
    assert sr.progress is not None and sr.min_face == 16
    quiet = restore._locator(restore.build_parser().parse_args(["x", "--model", "m", "--quiet"]),
                             fake("sr"))
    assert quiet.progress is None
    inpaint = restore._locator(args, fake("inpaint"))
    assert type(inpaint) is FacePipeline


def test_zero_scenes_only_with_the_photo_timing_alone(capsys):
    """--scenes 0 leaves nothing to score: refused in one line unless only --time-photo is
    asked for (which needs no scene), before any model or face is loaded."""
    from benchmarks import photo_sr

    for argv in (["--scenes", "0"], ["--scenes", "-2", "--time-photo"],
                 ["--scenes", "0", "--time-photo", "--identity", "dlib"]):
        assert photo_sr.main(argv + ["--model", "/nonexistent.tflite"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --scenes must be 1 or more") and "Traceback" not in err
    # with --time-photo alone, the scenes check passes and the model is what is refused
    assert photo_sr.main(["--scenes", "0", "--time-photo", "--model", "/nonexistent.tflite"]) == 2
    assert "--scenes" not in capsys.readouterr().err
    assert photo_sr.main(["--scenes", "0", "--time-photo", "--repeats", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --repeats must be 1 or more, got 0"
    assert photo_sr.main(["--grid-rows", "0", "--grid", "g.png",
                          "--model", "/nonexistent.tflite"]) == 2
    assert capsys.readouterr().err.strip() == "error: --grid-rows must be 1 or more, got 0"
    # the grid's shape without a grid is a usage error, not silently ignored
    for argv in (["--grid-order", "gain"], ["--grid-rows", "3"]):
        with pytest.raises(SystemExit) as e:
            photo_sr.main(argv + ["--model", "/nonexistent.tflite"])
        assert e.value.code == 2 and "add --grid FILE" in capsys.readouterr().err
    # --mirror averages the native path's tiles: without that path it is a usage error
    with pytest.raises(SystemExit) as e:
        photo_sr.main(["--mirror", "--model", "/nonexistent.tflite"])
    assert e.value.code == 2 and "--mirror applies to the native path" in capsys.readouterr().err


def test_grid_rows_spread_over_size_or_over_the_gain_worst_first(tmp_path):
    """--grid-order gain shows the worst face first, the median in the middle and the best
    last; size order keeps the LR sizes ascending; each row is one face's panels."""
    from benchmarks import photo_sr
    rng = np.random.default_rng(0)
    gains = rng.normal(1.0, 1.0, 21)
    sizes = rng.uniform(20, 120, 21)
    panels = [(float(s), [np.full((24, 24, 3), i * 10, np.uint8)] * 4, float(g))
              for i, (s, g) in enumerate(zip(sizes, gains))]
    by_gain = photo_sr.write_grid(str(tmp_path / "g.png"), panels, ["native"], 5, "gain")
    picked = [g for _, g in by_gain]
    assert picked[0] == gains.min() and picked[-1] == gains.max()
    assert picked[2] == np.median(gains) and picked == sorted(picked)
    by_size = photo_sr.write_grid(str(tmp_path / "s.png"), panels, ["native"], 3)
    assert [s for s, _ in by_size] == [sizes.min(), np.median(sizes), sizes.max()]
    grid = cv2.imread(str(tmp_path / "g.png"))
    assert grid.shape == (5 * 28, 4 * 28, 3)
    worst = int(np.argmin(gains)) * 10  # the worst face's panels fill the first row
    assert grid[20, 4, 0] == worst and grid[20 + 28 * 4, 4, 0] == int(np.argmax(gains)) * 10
