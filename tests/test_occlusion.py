"""Occlusion synthesis: determinism (eager vs Dataset.map), value sets, statistics."""

from __future__ import annotations

import numpy as np
import pytest

import tfface  # noqa: F401  (before tensorflow: selects tf_keras)
import tensorflow as tf

from tfface.config import Config, DataConfig
from tfface.data import occlusion as occ
from tfface.data.occlusion.celeba_c import _fold as fold
from tfface.data.occlusion.celeba_c import _folded_interval as folded_interval
from tfface.data.occlusion.core import _split as split_seed
from tfface.data.sources import CANONICAL_LANDMARKS

LANDMARKS = np.array(
    [[0.36, 0.42], [0.64, 0.42], [0.50, 0.56], [0.39, 0.70], [0.61, 0.70]], np.float32
)
FOLDER_GENERATORS = {"irregular", "realmask_unseen"}  # need a folder: tested with tmp folders
GENERATORS = sorted(set(occ.OCCLUSIONS) - FOLDER_GENERATORS)


def _seed(i: int, j: int = 7) -> tf.Tensor:
    return tf.constant([i, j], tf.int64)


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_eager_equals_dataset_map(name):
    fn, size, n = occ.OCCLUSIONS[name], 64, 6
    eager = np.stack([fn(_seed(i), size, LANDMARKS).numpy() for i in range(n)])
    ds = tf.data.Dataset.range(n).map(
        lambda i: fn(tf.stack([i, tf.constant(7, tf.int64)]), size, LANDMARKS),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    mapped = np.stack(list(ds.as_numpy_iterator()))
    np.testing.assert_array_equal(eager, mapped)
    assert eager.dtype == np.float32 and eager.shape == (n, size, size, 1)
    assert set(np.unique(eager)) <= {0.0, 1.0}
    assert all(m.sum() > 0 for m in eager)  # every mask has a hole
    # different seeds, different masks
    assert len({m.tobytes() for m in eager}) == n


# Hole fractions at 256 px over seeds 0..199 (measured: celeba_c mean 0.086 std 0.015,
# boxes mean 0.193 std 0.098); the asserted ranges leave room for sampling noise only.
@pytest.mark.parametrize(
    "name,mean_range,std_range",
    [("celeba_c", (0.07, 0.10), (0.008, 0.025)), ("boxes", (0.16, 0.23), (0.07, 0.13))],
)
def test_hole_fraction_statistics(name, mean_range, std_range):
    fracs = _fractions(occ.OCCLUSIONS[name], 256, n=200, landmarks=LANDMARKS)
    assert mean_range[0] < fracs.mean() < mean_range[1], fracs.mean()
    assert std_range[0] < fracs.std() < std_range[1], fracs.std()


def test_celeba_c_walk_rules():
    size = 178  # the paper's reference width: sizes are the paper's pixels
    for i in range(20):
        walk = {k: v.numpy() for k, v in occ.celeba_c_walk(_seed(i), size, LANDMARKS).items()}
        d = walk["directions"]
        assert d.shape == (occ.CELEBA_C_NUM_LINES,)
        assert set(d) <= {0, 1, 2, 3}
        assert np.all(d[1:] != d[:-1]), d
        np.testing.assert_allclose(walk["lengths"], np.round(walk["lengths"]))
        assert walk["lengths"].min() >= 10 and walk["lengths"].max() <= 20
        assert walk["widths"].min() >= 8 and walk["widths"].max() <= 13
        steps = np.diff(walk["points"], axis=0)
        assert np.all((steps == 0).sum(1) == 1)  # axis-aligned, one coordinate moves
        np.testing.assert_allclose(np.abs(steps).sum(1), walk["lengths"], atol=1e-4)
        starts = np.concatenate([LANDMARKS[:3], LANDMARKS[3:].mean(0, keepdims=True)]) * size
        np.testing.assert_allclose(walk["start"], starts[walk["landmark"]], atol=1e-4)


def test_celeba_c_walk_uses_all_choices():
    walks = [occ.celeba_c_walk(_seed(i), 128, LANDMARKS) for i in range(80)]
    assert {int(w["landmark"]) for w in walks} == {0, 1, 2, 3}
    lengths = np.concatenate([w["lengths"].numpy() for w in walks]) * 178 / 128
    widths = np.concatenate([w["widths"].numpy() for w in walks]) * 178 / 128
    assert set(np.round(lengths).astype(int)) == set(range(10, 21))
    assert set(np.round(widths).astype(int)) == set(range(8, 14))


def test_celeba_c_hole_covers_chosen_landmark():
    size = 64
    starts = np.concatenate([LANDMARKS[:3], LANDMARKS[3:].mean(0, keepdims=True)]) * size
    for i in range(20):
        mask = occ.celeba_c(_seed(i), size, LANDMARKS).numpy()[..., 0]
        pick = int(occ.celeba_c_walk(_seed(i), size, LANDMARKS)["landmark"])
        x, y = np.floor(starts[pick]).astype(int)
        assert mask[y, x] == 1.0
        # the whole 20 px (at 178) square around the start point is a hole
        half = int(occ.CELEBA_C_SQUARE * size / 178 / 2) - 1
        assert mask[y - half : y + half + 1, x - half : x + half + 1].min() == 1.0


def test_celeba_c_stays_inside_when_the_walk_reaches_the_border():
    corner = np.full((5, 2), 0.02, np.float32)  # every start point near the top-left corner
    for i in range(10):
        mask = occ.celeba_c(_seed(i), 64, corner).numpy()
        assert 0.01 < mask.mean() < 0.5


def test_boxes_count_and_sizes():
    size = 100
    for i in range(30):
        mask = occ.boxes(_seed(i), size, LANDMARKS).numpy()[..., 0]
        ys, xs = np.nonzero(mask)
        # the union's bounding box is at least one box (>= 10 % side) and inside the image
        assert xs.max() - xs.min() + 1 >= 10 and ys.max() - ys.min() + 1 >= 10
        assert mask.mean() <= 4 * 0.5 * 0.5 + 1e-6


def test_noise_fill_statistics_and_determinism():
    x = occ.noise_fill(_seed(1), 128).numpy()
    assert x.shape == (128, 128, 3) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 255
    assert abs(x.mean() - 128) < 1.0 and abs(x.std() - 35) < 1.0
    np.testing.assert_array_equal(x, occ.noise_fill(_seed(1), 128).numpy())
    assert not np.array_equal(x, occ.noise_fill(_seed(2), 128).numpy())
    # channels and neighbours are uncorrelated
    assert abs(np.corrcoef(x[..., 0].ravel(), x[..., 1].ravel())[0, 1]) < 0.03
    assert abs(np.corrcoef(x[:, :-1, 0].ravel(), x[:, 1:, 0].ravel())[0, 1]) < 0.03


def _image(size=64, seed=0):
    return tf.constant(np.random.default_rng(seed).integers(0, 256, (size, size, 3), np.uint8))


@pytest.mark.parametrize("name", sorted(set(GENERATORS) - set(occ.FILLS)))
def test_occlude_blends_fill_into_hole(name):
    img = _image()
    out = occ.occlude(img, LANDMARKS, _seed(5), {name: 1.0})
    s_pick, s_mask, s_fill = split_seed(_seed(5), 3)
    mask = out["mask"].numpy()
    np.testing.assert_array_equal(mask, occ.OCCLUSIONS[name](s_mask, 64, LANDMARKS).numpy())
    occluded, clean = out["occluded"].numpy(), img.numpy().astype(np.float32)
    assert occluded.dtype == np.float32 and occluded.shape == (64, 64, 3)
    hole = mask[..., 0] == 1
    np.testing.assert_array_equal(occluded[~hole], clean[~hole])
    # hole pixels, in row-major order, get the fill samples in order
    np.testing.assert_array_equal(occluded[hole], occ.noise_values(s_fill, hole.sum()).numpy())
    np.testing.assert_array_equal(
        occ.noise_values(s_fill, 64 * 64).numpy().reshape(64, 64, 3), occ.noise_fill(s_fill, 64)
    )
    assert int(out["occlusion"]) == occ.OCCLUSION_IDS[name]


def test_occlude_mixture_choice_and_determinism():
    img = _image()
    mixture = {"celeba_c": 0.5, "boxes": 0.5}
    ids = [int(occ.occlude(img, LANDMARKS, _seed(i), mixture)["occlusion"]) for i in range(40)]
    assert set(ids) == {occ.OCCLUSION_IDS["celeba_c"], occ.OCCLUSION_IDS["boxes"]}
    # a zero-probability generator is never chosen
    ids = [
        int(occ.occlude(img, LANDMARKS, _seed(i), {"celeba_c": 1.0, "boxes": 0.0})["occlusion"])
        for i in range(10)
    ]
    assert set(ids) == {occ.OCCLUSION_IDS["celeba_c"]}
    # eager equals Dataset.map
    eager = [occ.occlude(img, LANDMARKS, _seed(i), mixture)["occluded"].numpy() for i in range(4)]
    ds = tf.data.Dataset.range(4).map(
        lambda i: occ.occlude(img, LANDMARKS, tf.stack([i, tf.constant(7, tf.int64)]), mixture)[
            "occluded"
        ],
        num_parallel_calls=2,
        deterministic=True,
    )
    np.testing.assert_array_equal(np.stack(eager), np.stack(list(ds.as_numpy_iterator())))


def test_unknown_generator_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: boxes, celeba_c, eye_bar"):
        occ.occlude(_image(), LANDMARKS, _seed(0), {"celeba_c": 0.5, "nope": 0.5})
    with pytest.raises(ValueError, match="positive sum"):
        occ.check_mixture({"celeba_c": 0.0})
    with pytest.raises(ValueError, match=">= 0"):
        occ.check_mixture({"celeba_c": -1.0, "boxes": 2.0})


def test_registry_ids_are_stable_and_unique():
    assert occ.OCCLUSION_IDS["celeba_c"] == 0 and occ.OCCLUSION_IDS["boxes"] == 1
    assert len(set(occ.OCCLUSION_IDS.values())) == len(occ.OCCLUSION_IDS)
    assert set(occ.OCCLUSION_IDS) == set(occ.OCCLUSIONS)
    with pytest.raises(ValueError, match="already registered"):
        occ.register_occlusion("boxes")(occ.boxes)


def test_folded_interval_matches_sampled_fold():
    rng = np.random.default_rng(0)
    size = 50.0
    a = rng.uniform(-120, 170, 500).astype(np.float32)
    b = (a + rng.choice([-1, 1], 500) * rng.uniform(0, 20, 500)).astype(np.float32)
    lo, hi = (t.numpy() for t in folded_interval(tf.constant(a), tf.constant(b), size))
    t = np.linspace(0, 1, 4001, dtype=np.float64)[None]
    folded = fold(tf.constant(a[:, None] + (b - a)[:, None] * t, tf.float32), size).numpy()
    np.testing.assert_allclose(lo, folded.min(1), atol=1e-2)
    np.testing.assert_allclose(hi, folded.max(1), atol=1e-2)
    assert lo.min() >= 0 and hi.max() <= size


# --------------------------------------------------------------------------- new generators

CANON = np.asarray(CANONICAL_LANDMARKS)


def _data_cfg(size=64, **kw) -> DataConfig:
    d = DataConfig(image_size=size)
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def _eager_vs_map(fn, size, landmarks, n=5):
    eager = np.stack([fn(_seed(i), size, landmarks).numpy() for i in range(n)])
    ds = tf.data.Dataset.range(n).map(
        lambda i: fn(tf.stack([i, tf.constant(7, tf.int64)]), size, landmarks),
        num_parallel_calls=2,
        deterministic=True,
    )
    np.testing.assert_array_equal(eager, np.stack(list(ds.as_numpy_iterator())))
    assert eager.dtype == np.float32 and eager.shape == (n, size, size, 1)
    assert set(np.unique(eager)) <= {0.0, 1.0}
    return eager


def _fractions(fn, size, n=100, landmarks=CANON):
    ds = tf.data.Dataset.range(n).map(
        lambda i: tf.reduce_mean(fn(tf.stack([i, tf.constant(3, tf.int64)]), size, landmarks)),
        num_parallel_calls=2,
    )
    return np.asarray(next(iter(ds.batch(n))))


# Hole fractions, 200 seeds at 256 px, CANONICAL_LANDMARKS (docs/occlusions.md):
#   strokes_thin 0.251 ± 0.121, strokes_medium 0.220 ± 0.118, strokes_thick 0.289 ± 0.133,
#   facemask 0.119 ± 0.007 (procedural), sunglasses 0.063 ± 0.007, eye_bar 0.044 ± 0.006.
# Checked here on 100 seeds at 128 px: the ranges allow for sampling noise and scale.
@pytest.mark.parametrize(
    "name,mean_range,std_range",
    [
        ("strokes_thin", (0.21, 0.30), (0.09, 0.15)),
        ("strokes_medium", (0.17, 0.26), (0.09, 0.15)),
        ("strokes_thick", (0.24, 0.34), (0.10, 0.16)),
        ("facemask", (0.10, 0.14), (0.003, 0.015)),
        ("sunglasses", (0.05, 0.08), (0.003, 0.012)),
        ("eye_bar", (0.035, 0.055), (0.003, 0.01)),
    ],
)
def test_new_generator_hole_fraction_statistics(name, mean_range, std_range):
    fracs = _fractions(occ.OCCLUSIONS[name], 128)
    assert mean_range[0] < fracs.mean() < mean_range[1], fracs.mean()
    assert std_range[0] < fracs.std() < std_range[1], fracs.std()
    assert fracs.min() > 0


def test_capsule_rasterizer_matches_distance_field():
    rng = np.random.default_rng(0)
    size, n = 48, 30
    x0, y0, x1, y1 = (rng.uniform(-8, 56, n).astype(np.float32) for _ in range(4))
    x1[:4], y1[4:8] = x0[:4], y0[4:8]  # vertical, horizontal
    x1[8:10], y1[8:10] = x0[8:10], y0[8:10]  # points (disks)
    r = rng.uniform(0.5, 10, n).astype(np.float32)
    xl, xr = occ.capsule_spans(*map(tf.constant, (x0, y0, x1, y1, r)), size)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    for i in range(n):
        got = occ.spans_to_mask(xl[i : i + 1], xr[i : i + 1], tf.constant([1]), size).numpy() > 0
        dx, dy = x1[i] - x0[i], y1[i] - y0[i]
        t = np.clip(((xx - x0[i]) * dx + (yy - y0[i]) * dy) / (dx * dx + dy * dy + 1e-12), 0, 1)
        dist = np.hypot(xx - x0[i] - t * dx, yy - y0[i] - t * dy)
        wrong = (got != (dist <= r[i])) & (np.abs(dist - r[i]) > 1e-3)
        assert not wrong.any(), i


def test_strokes_walk_rules_and_thin_width_bound():
    size = 256
    for i in range(20):
        w = {k: v.numpy() for k, v in occ.free_form_walk(_seed(i), size, **occ.STROKE_PRESETS["thin"]).items()}
        assert 4 <= w["n_strokes"] <= 50 and not w["is_box"]
        assert w["width"].min() >= 5 and w["width"].max() <= 15  # thin: width <= 15 px at 256
        assert set(w["n_segments"]) <= {1, 2, 3, 4, 5}
        assert w["x"].min() >= 0 and w["x"].max() <= size and w["y"].max() <= size
    for preset, hi in (("medium", 54), ("thick", 104)):
        walks = [occ.free_form_walk(_seed(i), size, **occ.STROKE_PRESETS[preset]) for i in range(30)]
        widths = np.concatenate([w["width"].numpy().ravel() for w in walks])
        assert widths.min() >= 5 and widths.max() <= hi and widths.max() > hi - 15
        kinds = {bool(w["is_box"]) for w in walks}
        assert kinds == {True, False}  # strokes, and sometimes boxes (LaMa box_proba 0.3)


def test_strokes_cap_respected():
    gens = occ.make_occlusion_fns(
        _data_cfg(occlusion_options={"strokes_thick": {"max_area": 0.15}}), ["strokes_thick"]
    )
    fracs = _fractions(gens["strokes_thick"].mask, 64, n=60)
    assert fracs.max() <= 0.15 and fracs.min() > 0
    for name in ("strokes_thin", "strokes_thick"):
        assert _fractions(occ.OCCLUSIONS[name], 64, n=60).max() <= occ.STROKE_MAX_AREA


@pytest.mark.parametrize("name", ["facemask", "sunglasses", "eye_bar"])
def test_face_occluders_cover_the_right_landmarks(name):
    for lm in (CANON, LANDMARKS):
        for i in range(10):
            m = occ.OCCLUSIONS[name](_seed(i), 128, lm).numpy()[..., 0]
            px = [m[int(y * 128), int(x * 128)] for x, y in lm]
            mouth = lm[3:].mean(0)
            px_mouth = m[int(mouth[1] * 128), int(mouth[0] * 128)]
            if name == "facemask":
                assert px[2:] == [1, 1, 1] and px_mouth == 1  # nose, mouth corners
                assert px[:2] == [0, 0]  # not the eyes
                chin = lm[3:].mean(0) + [0, 0.08]  # just below the mouth
                assert m[int(chin[1] * 128), int(chin[0] * 128)] == 1
            else:
                assert px[:2] == [1, 1]  # both eyes
                assert px[2:] == [0, 0, 0] and px_mouth == 0


@pytest.mark.parametrize("name", ["facemask", "sunglasses", "eye_bar"])
def test_object_fill_draws_the_object(name):
    img = _image()
    out = occ.occlude(img, LANDMARKS, _seed(5), {name: 1.0})
    _, s_mask, _ = split_seed(_seed(5), 3)
    mask = out["mask"].numpy()[..., 0] == 1
    fill = occ.FILLS[name](s_mask, 64, tf.cast(img, tf.float32), LANDMARKS).numpy()
    occluded = out["occluded"].numpy()
    np.testing.assert_array_equal(occluded[mask], fill[mask])
    np.testing.assert_array_equal(occluded[~mask], img.numpy()[~mask].astype(np.float32))
    assert fill.dtype == np.float32 and fill.min() >= 0 and fill.max() <= 255
    # eager equals Dataset.map, fill included
    ds = tf.data.Dataset.range(3).map(
        lambda i: occ.occlude(img, LANDMARKS, tf.stack([i, tf.constant(7, tf.int64)]), {name: 1.0})["occluded"],
        num_parallel_calls=2,
    )
    eager = [occ.occlude(img, LANDMARKS, _seed(i), {name: 1.0})["occluded"].numpy() for i in range(3)]
    np.testing.assert_array_equal(np.stack(eager), np.stack(list(ds.as_numpy_iterator())))


def test_fill_options():
    img = _image()
    gens = occ.make_occlusion_fns(
        _data_cfg(occlusion_options={"strokes_thin": {"fill": "solid"}, "facemask": {"fill": "noise"}}),
        ["strokes_thin", "facemask"],
    )
    out = occ.occlude(img, LANDMARKS, _seed(1), {"strokes_thin": 1.0}, gens)
    hole = out["mask"].numpy()[..., 0] == 1
    colors = np.unique(out["occluded"].numpy()[hole], axis=0)
    assert len(colors) == 1 and colors.min() >= 0 and colors.max() <= 255
    assert gens["facemask"].fill is None  # noise
    with pytest.raises(ValueError, match="fill must be one of"):
        occ.make_occlusion_fns(_data_cfg(occlusion_options={"boxes": {"fill": "paint"}}), ["boxes"])
    with pytest.raises(ValueError, match="'object' needs a generator that draws"):
        occ.make_occlusion_fns(_data_cfg(occlusion_options={"boxes": {"fill": "object"}}), ["boxes"])
    with pytest.raises(ValueError, match="unknown option"):
        occ.make_occlusion_fns(_data_cfg(occlusion_options={"strokes_thin": {"widht": 3}}), ["strokes_thin"])
    with pytest.raises(ValueError, match="unknown generator"):
        occ.make_occlusion_fns(_data_cfg(occlusion_options={"nope": {}}), ["boxes"])


# --------------------------------------------------------------------------- irregular (folder)

# Hole fractions (at 64 px) of the synthetic mask folder: two per bin 0..5, off-center
# discs (so rotations and flips move them) and one ring.
IRREGULAR_AREAS = [0.04, 0.08, 0.13, 0.17, 0.23, 0.27, 0.33, 0.37, 0.43, 0.47, 0.53, 0.57]


def _disc_mask(area: float, size: int = 128, dx: float = 0.0) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    r = np.sqrt(area * size * size / np.pi)
    cx = size / 2 + dx * (size / 2 - r)
    return ((xx - cx) ** 2 + (yy - size / 2) ** 2 <= r * r).astype(np.uint8) * 255


@pytest.fixture(scope="module")
def mask_dir(tmp_path_factory):
    import cv2

    d = tmp_path_factory.mktemp("masks")
    for i, a in enumerate(IRREGULAR_AREAS):
        cv2.imwrite(str(d / f"{i:05d}.png"), _disc_mask(a, dx=0.3 if i % 2 else -0.3))
    (d / "README.txt").write_text("not a mask")
    return str(d)


def test_irregular_eager_equals_map_and_bins_hold(mask_dir):
    banks = occ.load_mask_bank(mask_dir, 64)
    assert banks[0].shape == (12, 64, 64) and banks[0].dtype == np.uint8
    for frac, want in zip(banks[1], IRREGULAR_AREAS):
        assert abs(frac - want) < 0.01
    gens = occ.make_occlusion_fns(_data_cfg(mask_dir=mask_dir, occlusions={"irregular": 1.0}))
    masks = _eager_vs_map(gens["irregular"].mask, 64, LANDMARKS, n=6)
    assert len({m.tobytes() for m in masks}) == 6
    for b in range(6):
        d = _data_cfg(mask_dir=mask_dir, occlusion_options={"irregular": {"bins": [b]}})
        fracs = _fractions(occ.make_occlusion_fns(d, ["irregular"])["irregular"].mask, 64, n=30)
        assert fracs.min() >= b / 10 and fracs.max() < (b + 1) / 10, (b, fracs)
    # default: all bins, uniformly
    fracs = _fractions(gens["irregular"].mask, 64, n=120)
    counts = np.bincount((fracs * 10).astype(int), minlength=6)
    assert counts.min() >= 8, counts


def test_irregular_flips_and_rotations_keep_area(mask_dir):
    opts = {"irregular": {"bins": [2], "rotate": 180.0, "scale": [1.0, 1.0]}}
    d = _data_cfg(mask_dir=mask_dir, occlusion_options=opts)
    fn = occ.make_occlusion_fns(d, ["irregular"])["irregular"].mask
    masks = np.stack([fn(_seed(i), 64, LANDMARKS).numpy()[..., 0] for i in range(12)])
    fracs = masks.mean((1, 2))
    assert np.all(np.abs(fracs - 0.25) < 0.035), fracs  # the two discs: 0.23, 0.27
    centers = {(round(float(np.mean(np.nonzero(m)[1]))), round(float(np.mean(np.nonzero(m)[0])))) for m in masks}
    assert len(centers) >= 4  # the off-center discs move around


def test_irregular_errors(tmp_path, mask_dir):
    with pytest.raises(ValueError, match="mask_dir"):
        occ.make_occlusion_fns(_data_cfg(occlusions={"irregular": 1.0}))
    with pytest.raises(ValueError, match="needs a folder"):
        occ.occlude(_image(), LANDMARKS, _seed(0), {"irregular": 1.0})
    with pytest.raises(ValueError, match="does not exist"):
        occ.make_occlusion_fns(_data_cfg(mask_dir=str(tmp_path / "nope")), ["irregular"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"'{empty}' holds no mask images"):
        occ.make_occlusion_fns(_data_cfg(mask_dir=str(empty)), ["irregular"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "00000.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read '00000.png'"):
        occ.make_occlusion_fns(_data_cfg(mask_dir=str(bad)), ["irregular"])
    with pytest.raises(ValueError, match="no mask in area bin 7"):
        occ.make_occlusion_fns(
            _data_cfg(mask_dir=mask_dir, occlusion_options={"irregular": {"bins": [7]}}), ["irregular"]
        )
    # the pipeline fails at construction, with the same message
    from tfface.data.pipeline import make_dataset

    cfg = Config()
    cfg.data.image_size = 32
    cfg.data.occlusions = {"irregular": 1.0}  # the train mixture (eval has its own)
    with pytest.raises(ValueError, match="mask_dir"):
        make_dataset(cfg, "train", batch_size=2)


# --------------------------------------------------------------------------- facemask templates


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory):
    """A MaskTheFace-style folder: one RGBA template (a blue rounded shape) + masks.cfg."""
    import cv2

    d = tmp_path_factory.mktemp("templates")
    h, w = 300, 400
    rgba = np.zeros((h, w, 4), np.uint8)
    cv2.ellipse(rgba, (200, 110), (195, 185), 0, 0, 180, (200, 120, 60, 255), -1)
    rgba[10:110, 5:395] = (200, 120, 60, 255)
    cv2.imwrite(str(d / "plain.png"), rgba)
    cv2.imwrite(str(d / "plain_left.png"), rgba)
    (d / "masks.cfg").write_text(
        "[plain]\ntemplate: masks/templates/plain.png\nmask_a: 8, 60\nmask_b: 200, 12\n"
        "mask_c: 392, 60\nmask_d: 40, 200\nmask_e: 200, 292\nmask_f: 360, 200\n\n"
        "[plain_left]\ntemplate: masks/templates/plain_left.png\nmask_a: 8, 60\nmask_b: 200, 12\n"
        "mask_c: 392, 60\nmask_d: 40, 200\nmask_e: 200, 292\nmask_f: 360, 200\n\n[empty]\n"
    )
    return str(d)


def test_facemask_templates(template_dir):
    bank, anchors, names = occ.load_facemask_templates(template_dir, 64)
    assert names == ["plain"] and bank.shape[0] == 1 and bank.shape[-1] == 4 and anchors.shape == (1, 6, 2)
    gens = occ.make_occlusion_fns(_data_cfg(facemask_dir=template_dir), ["facemask"])
    masks = _eager_vs_map(gens["facemask"].mask, 64, LANDMARKS)
    for m in masks[..., 0]:
        px = [m[int(y * 64), int(x * 64)] for x, y in LANDMARKS]
        assert px == [0, 0, 1, 1, 1]  # nose and mouth, not the eyes
        assert 0.08 < m.mean() < 0.3
    img = _image()
    out = occ.occlude(img, LANDMARKS, _seed(2), {"facemask": 1.0}, gens)
    hole = out["mask"].numpy()[..., 0] == 1
    # the template's color (BGR 200,120,60 → RGB 60,120,200) fills the hole
    np.testing.assert_allclose(np.median(out["occluded"].numpy()[hole], 0), [60, 120, 200], atol=3)


def test_facemask_template_errors(tmp_path, template_dir):
    import cv2

    with pytest.raises(ValueError, match="does not exist"):
        occ.make_occlusion_fns(_data_cfg(facemask_dir=str(tmp_path / "nope")), ["facemask"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"'{empty}' has no masks.cfg"):
        occ.make_occlusion_fns(_data_cfg(facemask_dir=str(empty)), ["facemask"])
    bad = tmp_path / "bad"
    bad.mkdir()
    cv2.imwrite(str(bad / "x.png"), np.zeros((20, 20, 3), np.uint8))
    (bad / "masks.cfg").write_text("[x]\ntemplate: x.png\nmask_a: 1, 2\n")
    with pytest.raises(ValueError, match=r"\[x\] of masks.cfg needs anchors"):
        occ.make_occlusion_fns(_data_cfg(facemask_dir=str(bad)), ["facemask"])
    (bad / "masks.cfg").write_text(
        "[x]\ntemplate: x.png\n" + "".join(f"mask_{k}: 1, 2\n" for k in "abcdef")
    )
    with pytest.raises(ValueError, match="no alpha channel"):
        occ.make_occlusion_fns(_data_cfg(facemask_dir=str(bad)), ["facemask"])
    with pytest.raises(ValueError, match="no template section"):
        occ.make_occlusion_fns(
            _data_cfg(facemask_dir=template_dir, occlusion_options={"facemask": {"templates": ["n95"]}}),
            ["facemask"],
        )
