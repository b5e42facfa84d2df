"""tf.data pipeline: shapes, ranges, determinism, resume, SR, calibration data."""

from __future__ import annotations

import numpy as np
import pytest

import tfface  # noqa: F401  (before tensorflow: selects tf_keras)

from tfface.config import Config
from tfface.data import occlusion as occ
from tfface.data import pipeline

SIZE, EVAL_COUNT, BATCH = 64, 8, 4
ONE = {"boxes": 1.0}
"""One occlusion, for tests whose claim does not involve the mixture: each dataset built
with the default mixture costs about 13 s of graph tracing."""


def small_config(**data) -> Config:
    cfg = Config()
    cfg.data.source = "synthetic"
    cfg.data.image_size = SIZE
    cfg.data.eval_count = EVAL_COUNT
    cfg.data.synthetic_count = 64
    for k, v in data.items():
        setattr(cfg.data, k, v)
    cfg.train.batch_size = BATCH
    return cfg


def _take(ds, n):
    return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]


def test_inpaint_batches_shapes_dtypes_ranges():
    cfg = small_config()
    (b,) = _take(pipeline.make_dataset(cfg, "train"), 1)
    assert set(b) == {"clean", "occluded", "mask", "occlusion", "index"}
    for k in ("clean", "occluded"):
        assert b[k].shape == (BATCH, SIZE, SIZE, 3) and b[k].dtype == np.float32
        assert b[k].min() >= -1.0 and b[k].max() <= 1.0
    assert b["mask"].shape == (BATCH, SIZE, SIZE, 1) and b["mask"].dtype == np.float32
    assert set(np.unique(b["mask"])) <= {0.0, 1.0}
    assert b["occlusion"].shape == (BATCH,) and b["occlusion"].dtype == np.int32
    assert set(b["occlusion"]) <= set(occ.OCCLUSION_IDS.values())
    assert b["index"].dtype == np.int64
    np.testing.assert_array_equal(b["index"], np.arange(BATCH))
    hole = b["mask"][..., 0] == 1
    np.testing.assert_array_equal(b["occluded"][~hole], b["clean"][~hole])
    assert not np.array_equal(b["occluded"][hole], b["clean"][hole])
    assert pipeline.model_input_key(cfg) == "occluded"


def test_eval_split_is_deterministic_and_finite():
    cfg = small_config()
    first = _take(pipeline.make_dataset(cfg, "eval"), 100)
    second = _take(pipeline.make_dataset(cfg, "eval"), 100)
    assert len(first) == EVAL_COUNT // BATCH
    for a, b in zip(first, second):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    indices = np.concatenate([b["index"] for b in first])
    np.testing.assert_array_equal(indices, np.arange(EVAL_COUNT))


def test_eval_elements_do_not_depend_on_the_batch_size():
    # The run's sample grid is cut from the eval batches (runner._eval_data) on this
    # property: element i of the eval stream is the same face, occlusion and mask at any
    # batch size.
    cfg = small_config()
    by4 = _take(pipeline.make_dataset(cfg, "eval"), 100)
    (by3,) = _take(pipeline.make_dataset(cfg, "eval", batch_size=3), 1)
    for k in by3:
        np.testing.assert_array_equal(np.concatenate([b[k] for b in by4])[:3], by3[k])


def test_eval_keeps_remainder_and_uses_eval_mixture():
    cfg = small_config(eval_occlusions={"boxes": 1.0})
    batches = _take(pipeline.make_dataset(cfg, "eval", batch_size=3), 100)
    assert [len(b["index"]) for b in batches] == [3, 3, 2]
    assert {int(i) for b in batches for i in b["occlusion"]} == {occ.OCCLUSION_IDS["boxes"]}


def test_train_and_eval_synthesis_differ():
    # The same single generator in both splits: they differ by their seeds alone, not by
    # drawing from different mixtures.
    cfg = small_config(occlusions=ONE, eval_occlusions=ONE)
    (tr,) = _take(pipeline.make_dataset(cfg, "train", batch_size=1), 1)
    (ev,) = _take(pipeline.make_dataset(cfg, "eval", batch_size=1), 1)
    assert not np.array_equal(tr["mask"], ev["mask"])


def test_train_resume_continues_without_replay():
    cfg = small_config()
    fresh = _take(pipeline.make_dataset(cfg, "train"), 4)
    resumed = _take(pipeline.make_dataset(cfg, "train", start_step=3), 1)[0]
    for k in fresh[3]:
        np.testing.assert_array_equal(fresh[3][k], resumed[k])
    np.testing.assert_array_equal(resumed["index"], np.arange(3 * BATCH, 4 * BATCH))


def test_sr_task():
    cfg = small_config(task="sr", scale=4, sr_downscale="area")
    (b,) = _take(pipeline.make_dataset(cfg, "eval"), 1)
    assert set(b) == {"clean", "lr", "index"}
    assert b["lr"].shape == (BATCH, SIZE // 4, SIZE // 4, 3) and b["lr"].dtype == np.float32
    assert b["lr"].min() >= -1.0 and b["lr"].max() <= 1.0
    # area downscale: each lr pixel is the mean of its 4x4 block of the clean image
    blocks = b["clean"].reshape(BATCH, SIZE // 4, 4, SIZE // 4, 4, 3).mean((2, 4))
    np.testing.assert_allclose(b["lr"], blocks, atol=1e-5)
    assert pipeline.model_input_key(cfg) == "lr"


def test_bad_arguments():
    cfg = small_config()
    with pytest.raises(ValueError, match="split"):
        pipeline.make_dataset(cfg, "test")
    with pytest.raises(ValueError, match="valid names"):
        pipeline.make_dataset(small_config(occlusions={"bogus": 1.0}), "train")
    with pytest.raises(ValueError, match="scale"):
        pipeline.make_dataset(small_config(task="sr", scale=3), "train")


def test_representative_batches():
    cfg = small_config(occlusions=ONE)
    xs = list(pipeline.representative_batches(cfg, n=5, allow_small=True))
    assert len(xs) == 5
    for x in xs:
        assert isinstance(x, np.ndarray) and x.shape == (1, SIZE, SIZE, 3) and x.dtype == np.float32
        assert -1.0 <= x.min() and x.max() <= 1.0
    again = list(pipeline.representative_batches(cfg, n=5, allow_small=True))
    np.testing.assert_array_equal(np.stack(xs), np.stack(again))
    sr_cfg = small_config(task="sr", scale=2)
    sr = list(pipeline.representative_batches(sr_cfg, n=3, allow_small=True))
    assert sr[0].shape == (1, SIZE // 2, SIZE // 2, 3)
    with pytest.raises(ValueError, match="at least 100"):
        pipeline.representative_batches(cfg, n=50)
    with pytest.raises(ValueError, match="eval split holds"):
        pipeline.representative_batches(cfg, n=100, split="eval")
