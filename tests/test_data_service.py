"""tf.data service: an in-process dispatcher and two workers on loopback run synthesis."""

from __future__ import annotations

import numpy as np
import pytest

import tfface  # noqa: F401  (before tensorflow: selects tf_keras)
import tensorflow as tf

from tfface.config import Config
from tfface.data import pipeline

SIZE, BATCH = 32, 4
ONE = {"occlusions": {"boxes": 1.0}, "eval_occlusions": {"boxes": 1.0}}
"""One occlusion, for the tests about the service's mechanics (the eval split, the resume
offset): each dataset built with the default mixture costs about 13 s of graph tracing,
and the train-batch test already sends the whole mixture through the service."""


@pytest.fixture(scope="module")
def service():
    """A dispatcher and two workers in this process: the synthetic source's faces are drawn
    by a Python callback, which only workers inside the trainer's process can run (see
    docs/data_service.md); the folder source is also served by separate processes in
    tests/test_multiworker.py."""
    svc = tf.data.experimental.service
    # Jobs whose clients are gone are released at once, so the workers have no task left
    # when they are stopped (with the defaults, stopping them took 37-41 s).
    dispatcher = svc.DispatchServer(svc.DispatcherConfig(
        port=0, job_gc_check_interval_ms=100, job_gc_timeout_ms=100))
    host_port = dispatcher.target.split("://", 1)[1]
    workers = [
        svc.WorkerServer(
            svc.WorkerConfig(dispatcher_address=host_port, worker_address="localhost:%port%",
                             port=0, heartbeat_interval_ms=100)
        )
        for _ in range(2)
    ]
    yield dispatcher.target
    for w in workers:
        w._stop()
    dispatcher._stop()


def small_config(**data) -> Config:
    cfg = Config()
    cfg.data.source = "synthetic"
    cfg.data.image_size = SIZE
    cfg.data.eval_count = 10
    cfg.data.synthetic_count = 24
    for k, v in data.items():
        setattr(cfg.data, k, v)
    cfg.train.batch_size = BATCH
    return cfg


def _batches(ds, n=None):
    ds = ds if n is None else ds.take(n)
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


def _by_index(batches):
    out = {}
    for b in batches:
        for j, i in enumerate(b["index"]):
            out[int(i)] = {k: v[j] for k, v in b.items()}
    return out


@pytest.mark.parametrize("task", ["inpaint", "sr"])
def test_train_batches_through_service_match_local(service, task):
    extra = {"task": "sr", "scale": 2, "degradation": "classic"} if task == "sr" else {}
    local_cfg = small_config(**extra)
    remote_cfg = small_config(data_service=service, **extra)
    n = 8  # 32 elements: more than one epoch of the 24 synthetic faces
    remote = _batches(pipeline.make_dataset(remote_cfg, "train"), n)
    assert len(remote) == n
    for b in remote:  # complete batches of the right shapes
        assert b["clean"].shape == (BATCH, SIZE, SIZE, 3)
        assert b["index"].shape == (BATCH,)
    got = _by_index(remote)
    assert len(got) == n * BATCH  # every index exactly once
    # what arrived is a prefix of the stream up to the last few in flight
    assert min(got) == 0 and max(got) < n * BATCH + 16
    local = _by_index(_batches(pipeline.make_dataset(local_cfg, "train"), n + 4))
    for i, el in got.items():
        for k, v in el.items():
            np.testing.assert_array_equal(v, local[i][k], err_msg=f"{k} of element {i}")


def test_resume_through_service_starts_at_step(service):
    cfg = small_config(data_service=service, **ONE)
    got = _by_index(_batches(pipeline.make_dataset(cfg, "train", start_step=3), 2))
    assert min(got) >= 3 * BATCH


def test_eval_through_service_equals_local(service):
    local = _batches(pipeline.make_dataset(small_config(**ONE), "eval"))
    remote = _batches(pipeline.make_dataset(small_config(data_service=service, **ONE), "eval"))
    assert [len(b["index"]) for b in remote] == [4, 4, 2]
    assert len(local) == len(remote)
    for a, b in zip(local, remote):
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_bad_service_address():
    with pytest.raises(ValueError, match="grpc://HOST:PORT"):
        pipeline.make_dataset(small_config(data_service="localhost:5000"), "train")


def test_folder_source_through_service(service, tmp_path):
    import cv2

    from tfface.data.sources import render_synthetic_face

    for i in range(12):
        img, _ = render_synthetic_face(1, i, 40, 0)
        cv2.imwrite(str(tmp_path / f"f{i}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    cfg = small_config(source="folder", data_dir=str(tmp_path), data_service=service,
                       task="sr", scale=2)
    first = _batches(pipeline.make_dataset(cfg, "eval", batch_size=1))
    again = _batches(pipeline.make_dataset(cfg, "eval", batch_size=1))
    local = _batches(pipeline.make_dataset(small_config(source="folder", data_dir=str(tmp_path),
                                                        task="sr", scale=2), "eval", batch_size=1))
    assert len(first) == len(local) >= 1
    for a, b, c in zip(first, again, local):
        np.testing.assert_array_equal(a["lr"], b["lr"])
        assert a["clean"].shape == (1, SIZE, SIZE, 3)
        assert np.abs(a["clean"] - c["clean"]).mean() < 0.02  # TF vs OpenCV decode + resize
    train = _by_index(_batches(pipeline.make_dataset(cfg, "train"), 3))
    assert len(train) == 3 * BATCH
