"""One worker of a multi-worker test job (run by tests/test_multiworker.py, not collected).

``python tests/multiworker_probe.py OUT.json RUN_DIR PROBE_STEPS -- TRAIN_ARGS...`` joins
the cluster of ``TF_CONFIG`` and, with the config that ``python -m pipelines.train
TRAIN_ARGS`` would use:

1. reads ``PROBE_STEPS`` global batches of the training input that ``run`` feeds a
   multi-worker job (:func:`tfface.train.distributed.train_dataset`), through the
   tf.data service when the config names one, and from the local source (sharded by
   worker) otherwise, and records the element indices this worker received;
2. trains with :func:`tfface.train.run` in ``RUN_DIR``;

then writes ``{"task", "service", "local", "status", "step"}`` to ``OUT.json``.
"""

from __future__ import annotations

import json
import sys

import tfface  # noqa: F401  (tf_keras before TensorFlow)


def _indices(strategy, ds, steps):
    it = iter(ds)
    got = []
    for _ in range(steps):
        batch = next(it)
        for part in strategy.experimental_local_results(batch["index"]):
            got.append([int(i) for i in part.numpy()])
    return got


def main(argv):
    out, run_dir, steps = argv[0], argv[1], int(argv[2])
    train_args = argv[argv.index("--") + 1:]
    from pipelines.train import build_parser, config_from_args
    from tfface.data.sources import make_source
    from tfface.train import distributed, run
    from tfface.train.runner import make_strategy

    cfg = config_from_args(build_parser().parse_args(train_args))
    role = distributed.worker_role(cfg.train.strategy)
    strategy = make_strategy(cfg.train.strategy)
    source = make_source(cfg.data)
    record = {"task": role.task_id, "chief": role.is_chief}
    if cfg.data.data_service:
        ds = distributed.train_dataset(cfg, strategy, role, start_step=0, source=source,
                                       service_job="probe-" + run_dir.replace("/", "-"))
        record["service"] = _indices(strategy, ds, steps)
    local_cfg = cfg.__class__.from_dict(cfg.to_dict())
    local_cfg.data.data_service = None
    ds = distributed.train_dataset(local_cfg, strategy, role, start_step=0, source=source)
    record["local"] = _indices(strategy, ds, steps)
    result = run(cfg, run_dir, progress=False)
    record.update(status=result.status, step=result.step)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(record, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
