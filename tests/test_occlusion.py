"""Occlusion synthesis: determinism (eager vs Dataset.map), value sets, statistics."""

from __future__ import annotations

import numpy as np
import pytest

import tfface  # noqa: F401  (before tensorflow: selects tf_keras)
import tensorflow as tf

from tfface.data import occlusion as occ

LANDMARKS = np.array(
    [[0.36, 0.42], [0.64, 0.42], [0.50, 0.56], [0.39, 0.70], [0.61, 0.70]], np.float32
)
GENERATORS = sorted(occ.OCCLUSIONS)


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
    fn = occ.OCCLUSIONS[name]
    seeds = tf.stack([tf.range(200, dtype=tf.int64), tf.fill([200], tf.constant(3, tf.int64))], 1)
    fracs = tf.map_fn(
        lambda s: tf.reduce_mean(fn(s, 256, LANDMARKS)), seeds, fn_output_signature=tf.float32
    ).numpy()
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


@pytest.mark.parametrize("name", GENERATORS)
def test_occlude_blends_fill_into_hole(name):
    img = _image()
    out = occ.occlude(img, LANDMARKS, _seed(5), {name: 1.0})
    s_pick, s_mask, s_fill = occ._split(_seed(5), 3)
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
    with pytest.raises(ValueError, match="valid names: boxes, celeba_c"):
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
    lo, hi = (t.numpy() for t in occ._folded_interval(tf.constant(a), tf.constant(b), size))
    t = np.linspace(0, 1, 4001, dtype=np.float64)[None]
    folded = occ._fold(tf.constant(a[:, None] + (b - a)[:, None] * t, tf.float32), size).numpy()
    np.testing.assert_allclose(lo, folded.min(1), atol=1e-2)
    np.testing.assert_allclose(hi, folded.max(1), atol=1e-2)
    assert lo.min() >= 0 and hi.max() <= size
