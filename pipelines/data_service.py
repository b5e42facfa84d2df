"""Run a tf.data service dispatcher or worker that synthesizes tfface training pairs.

Examples::

    # host A: the dispatcher (one per cluster)
    python -m pipelines.data_service --dispatcher --port 5050
    # hosts B, C, ...: workers (as many as needed; they register with the dispatcher)
    python -m pipelines.data_service --worker --dispatcher-address hostA:5050 --port 5051
    # the trainer
    python -m pipelines.train --arch vnet --data-dir /shared/faces \\
        --set data.data_service='"grpc://hostA:5050"'

See docs/data_service.md. The process serves until interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Sequence

import tfface  # noqa: F401  (selects tf_keras before TensorFlow loads)
from tfface.cli import prog_name


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("pipelines.data_service", "tfface-data-service"),
        description="Start a tf.data service dispatcher or worker for tfface's synthesis.",
        epilog="The trainer connects with data.data_service=grpc://DISPATCHER_HOST:PORT. "
        "Writes no files, except the dispatcher's journal in --work-dir DIR when given.",
    )
    role = p.add_mutually_exclusive_group(required=True)
    role.add_argument("--dispatcher", action="store_true", help="run the dispatcher")
    role.add_argument("--worker", action="store_true", help="run a worker")
    p.add_argument("--port", type=int, default=0,
                   help="port to listen on (default 0: any free port, printed at start)")
    p.add_argument("--dispatcher-address", metavar="HOST:PORT",
                   help="worker only: where the dispatcher listens")
    p.add_argument("--worker-host", default=None, metavar="HOST",
                   help="worker only: the name other hosts reach this worker by "
                   "(default: this machine's host name)")
    p.add_argument("--work-dir", default=None, metavar="DIR",
                   help="dispatcher only: folder for its journal; with it, a restarted "
                   "dispatcher recovers its state (fault-tolerant mode)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import tensorflow as tf

    svc = tf.data.experimental.service
    if args.dispatcher:
        config = svc.DispatcherConfig(port=args.port, work_dir=args.work_dir,
                                      fault_tolerant_mode=bool(args.work_dir))
        server = svc.DispatchServer(config)
        port = server.target.rsplit(":", 1)[1]
        print(f"dispatcher listening on port {port}; trainers use "
              f"data.data_service=grpc://{socket.getfqdn()}:{port}", flush=True)
    else:
        if not args.dispatcher_address:
            print("error: --worker needs --dispatcher-address HOST:PORT", file=sys.stderr)
            return 2
        address = args.dispatcher_address.removeprefix("grpc://")
        host = args.worker_host or socket.getfqdn()
        server = svc.WorkerServer(svc.WorkerConfig(
            dispatcher_address=address, worker_address=f"{host}:%port%", port=args.port))
        print(f"worker {host} serving for dispatcher {address}", flush=True)
    try:
        server.join()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
