"""Training throughput of ``--strategy multiworker`` with 1 and 2 local workers.

    python -m benchmarks.multiworker                       # demo V-Net, 64 px, batch 16
    python -m benchmarks.multiworker --workers 1 2 --steps 40 --preset tiny

Each case is a real job: ``N`` worker processes on loopback with a ``TF_CONFIG`` (free
ports), each running :func:`tfface.train.run` with the same config as ``python -m
pipelines.train ... --strategy multiworker`` (synthetic faces, the full input pipeline,
checkpoints off the timed window). ``0`` workers is the baseline: one process with the
default strategy. A callback times the steps after ``--warmup`` (tracing, first
all-reduces) to the last step and reads each process's CPU time over the same window,
so the figures are

* images/s: global batch x timed steps / wall seconds;
* images per CPU-second: the same images / the CPU seconds of all workers together,
  which stays meaningful on a shared machine where wall time depends on the neighbours.

On one 2-core host two workers share the same cores, so this measures the overhead of
the multi-worker engine (all-reduce over loopback, a per-worker input pipeline), not a
speed-up; on separate hosts the compute per worker halves. It is a benchmark: nothing
is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _worker(out: str, run_dir: str, warmup: int, train_args: list[str]) -> int:
    """One worker: train with a timing callback, write the window's figures to ``out``."""
    import tfface  # noqa: F401
    from pipelines.train import build_parser, config_from_args
    from tfface import keras
    from tfface.train import run

    cfg = config_from_args(build_parser().parse_args(train_args))
    marks = {}

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = int(self.model.g_optimizer.iterations.numpy())
            if step == warmup or step == total:
                marks[step] = (time.perf_counter(), _cpu_seconds())

    total = cfg.train.epochs * cfg.train.steps_per_epoch
    result = run(cfg, run_dir, resume=False, extra_callbacks=[Timer()], progress=False)
    (t0, c0), (t1, c1) = marks[warmup], marks[total]
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"status": result.status, "wall": t1 - t0, "cpu": c1 - c0,
                   "steps": total - warmup}, f)
    return 0


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _case(workers: int, args, tmp: str) -> dict:
    n = max(1, workers)
    ports = _free_ports(n)
    strategy = "multiworker" if workers else "default"
    run_dir = os.path.join(tmp, f"run-{workers}")
    train_args = ["--arch", args.arch, "--preset", args.preset, "--image-size",
                  str(args.image_size), "--batch-size", str(args.batch_size),
                  "--epochs", "1", "--steps-per-epoch", str(args.warmup + args.steps),
                  "--adv-weight", "0", "--strategy", strategy, "--quiet",
                  "--set", f"train.save_every_steps={args.warmup + args.steps}",
                  "--set", "train.eval_batches=1", "--set", "train.sample_count=2"]
    procs, outs = [], []
    for i in range(n):
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2",
                   TFFACE_SKIP_MEMORY_CHECK="1")
        env.pop("TF_CONFIG", None)
        if workers:
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                                           "task": {"type": "worker", "index": i}})
        outs.append(os.path.join(tmp, f"w{workers}-{i}.json"))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "benchmarks.multiworker", "--worker", outs[-1], run_dir,
             str(args.warmup), "--", *train_args],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    try:
        for p in procs:
            _, err = p.communicate(timeout=args.timeout)
            if p.returncode:
                raise SystemExit(f"a worker of the {workers}-worker case failed:\n{err[-2000:]}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    rec = [json.load(open(o, encoding="utf-8")) for o in outs]
    wall = max(r["wall"] for r in rec)
    cpu = sum(r["cpu"] for r in rec)
    images = args.batch_size * rec[0]["steps"]
    return {"workers": workers, "images_per_s": images / wall,
            "images_per_cpu_s": images / cpu, "wall": wall, "cpu": cpu, "images": images}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.multiworker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2],
                   help="worker counts to measure (0: one process, default strategy)")
    p.add_argument("--arch", default="vnet")
    p.add_argument("--preset", default="demo")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16, help="global batch")
    p.add_argument("--steps", type=int, default=30, help="timed steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed first steps")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per case")
    p.add_argument("--worker", nargs=3, metavar=("OUT", "RUN_DIR", "WARMUP"),
                   help=argparse.SUPPRESS)
    args, rest = p.parse_known_args(argv)
    if args.worker:
        out, run_dir, warmup = args.worker
        return _worker(out, run_dir, int(warmup), rest[rest.index("--") + 1:] if "--" in rest
                       else rest)
    print(f"{args.arch}/{args.preset} {args.image_size} px, global batch {args.batch_size}, "
          f"{args.steps} timed steps after {args.warmup}; {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'workers':>8} {'images/s':>9} {'img/CPU-s':>10} {'wall s':>7} {'CPU s':>7}")
    with tempfile.TemporaryDirectory(prefix="tfface-bench-mw-") as tmp:
        for w in args.workers:
            r = _case(w, args, tmp)
            name = f"{w}" if w else "1 (default)"
            print(f"{name:>8} {r['images_per_s']:9.1f} {r['images_per_cpu_s']:10.2f} "
                  f"{r['wall']:7.1f} {r['cpu']:7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
