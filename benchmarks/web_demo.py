"""The web demo against Python LiteRT, per shipped file: agreement and latency.

    python -m benchmarks.web_demo                 # every android_demo_assets/*/*_samples.json
    python -m benchmarks.web_demo --runs 30

For each shipped file the page (web_demo/, LiteRT.js WebAssembly in headless Chromium,
served cross-origin isolated so it gets its threaded runtime) runs every sample input,
and the project's Python runner (``tfface.lite.LiteRunner``, ai-edge-litert, XNNPACK)
runs the same inputs: printed are the largest difference in 8-bit levels between the two
outputs and between the page and the expected PNGs.

Latency is the median of ``--runs`` runs after warm-up on sample 0, in both at
``--threads`` threads (the page uses as many as the browser reports cores, 2 here; it is
also timed single-threaded, ``index.html?threads=0``), each
measured the same way: copying the inputs in, invoking, copying the output out. The
harness's invoke-only median (``tfface.export.harness.measure_latency``) is printed beside it.
Python is timed before and after the browser and both medians are printed, so a change
of load on a shared machine shows; the load average is printed at the start and the end.

With ``--faces`` it times the page's face path instead, on the photos the browser test
composes (scikit-image's astronaut, public domain): finding the faces (BlazeFace in
LiteRT.js, median of ``--runs``), "Find the occluder" on every face and Restore (wall
time from the click until the page settles, one run each, the first of the session, so
XNNPACK's set-up is included), for the inpainting and the super-resolution file.

Needs what tests/test_web_demo.py needs: Debian's chromium, Node.js, ``npm ci --prefix
web_demo``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sample_feed(manifest: str, index: int) -> dict[str, np.ndarray]:
    """Sample ``index``'s inputs as the Python reference feeds them (check_samples)."""
    import cv2

    from tfface.imageio import to_float

    m = json.load(open(manifest))
    base = os.path.dirname(manifest)
    feed = {}
    for key, rel in m["samples"][index]["inputs"].items():
        img = cv2.imread(os.path.join(base, rel), cv2.IMREAD_UNCHANGED)
        if key == "mask":
            feed[key] = (img[None, ..., None] > 127).astype(np.float32)
        else:
            feed[key] = to_float(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))[None]
    return feed


def python_latency(runner, feed: dict[str, np.ndarray], runs: int, warmup: int = 3) -> float:
    """Median ms of set inputs + invoke + read output, the page's measure."""
    it = runner.interpreter
    ins = [(d["index"], np.ascontiguousarray(feed[runner.tensor_key(d)], d["dtype"]))
           for d in runner.inputs]
    out = runner.outputs[0]["index"]
    times = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        for idx, x in ins:
            it.set_tensor(idx, x)
        it.invoke()
        it.get_tensor(out).copy()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def run_page(manifests: list[str], runs: int, query: str = "", extra: list[str] = ()) -> dict:
    from tests.test_web_demo import browser_setup
    from web_demo import serve

    chromium, node, missing = browser_setup()
    if missing:
        raise SystemExit("error: the benchmark needs " + ", ".join(missing))
    server, url = serve.start_in_thread(quiet=True)
    try:
        proc = subprocess.run(
            [node, os.path.join(ROOT, "web_demo", "browser_check.mjs"), "--url", url + query,
             "--chromium", chromium, "--root", ROOT, "--runs", str(runs), *extra,
             *[os.path.relpath(m, ROOT) for m in manifests]],
            capture_output=True, text=True, timeout=1800, cwd=ROOT)
    finally:
        server.shutdown()
        server.server_close()
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.strip().splitlines()[-1])
    return json.loads(proc.stdout)


def faces(runs: int) -> int:
    """The page's face path on the browser test's composed photos (see the docstring)."""
    import tempfile

    import cv2

    from tests.test_web_demo import composed_photo, first_manifest, small_face_photo

    inpaint, sr = first_manifest("mask"), first_manifest("lr")
    if not inpaint or not sr:
        raise SystemExit("error: --faces needs a shipped inpainting and SR file")
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        photos = {"composed": composed_photo()[0], "small": small_face_photo()}
        paths = {}
        for name, rgb in photos.items():
            paths[name] = os.path.join(tmp, f"{name}.png")
            cv2.imwrite(paths[name], cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        page = run_page([], runs, extra=["--faces", paths["composed"], "--faces-model", inpaint,
                                         "--faces-sr", paths["small"], "--faces-sr-model", sr])
    print(f"browser: Chromium {page['browser']}")
    print("\n| photo | file | faces | find faces p50 (min) | Find the occluder | Restore "
          "(wall) | model runs | in the model |")
    print("|---|---|---|---|---|---|---|---|")
    for key, name in (("faces", "composed"), ("facesSr", "small")):
        r = page[key]
        h, w = photos[name].shape[:2]
        dt = r["detectTime"]
        model = inpaint if key == "faces" else sr
        find = f"{r['findMs']} ms" if "findMs" in r else "–"
        reg = r["regions"][0]
        tiles = f", {reg['tileCount']} tiles of a {reg['size']} px crop" if reg["tiles"] else ""
        print(f"| {name} {w}x{h} | `{os.path.basename(os.path.dirname(model))}` | "
              f"{len(r['found']['faces'])} | {dt['p50_ms']:.0f} ({dt['min_ms']:.0f}) ms | "
              f"{find} | {r['restoreMs']} ms | {r['lastRun']['runs']}{tiles} | "
              f"{r['lastRun']['ms']:.0f} ms |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.web_demo",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("manifests", nargs="*", help="samples files (default: every shipped one)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per file (default 20)")
    parser.add_argument("--threads", type=int, default=2, help="Python LiteRT threads (default 2)")
    parser.add_argument("--faces", action="store_true",
                        help="time the page's face path (find, align, restore) instead")
    args = parser.parse_args(argv)
    if args.faces:
        return faces(args.runs)
    import cv2

    from tests.test_web_demo import page_levels
    from tfface.export.harness import measure_latency
    from tfface.lite import LiteRunner
    from tfface.imageio import to_uint8

    manifests = [os.path.abspath(m) for m in args.manifests] or sorted(
        glob.glob(os.path.join(ROOT, "android_demo_assets", "*", "*_samples.json")))
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)

    rows = {}
    for man in manifests:
        m = json.load(open(man))
        model = os.path.join(os.path.dirname(man), m["model"])
        runner = LiteRunner(model, num_threads=args.threads)
        outs = [to_uint8(runner.run_named(sample_feed(man, i))[0])
                for i in range(len(m["samples"]))]
        feed0 = sample_feed(man, 0)
        invoke = measure_latency(model, threads=(args.threads,), xnnpack=(True,), runs=args.runs,
                                 inputs=[feed0[k] for k in runner.input_keys])
        rows[man] = {"py": outs, "runner": runner, "feed0": feed0,
                     "py_ms": [python_latency(runner, feed0, args.runs)],
                     "py_invoke_ms": invoke[0]["p50_ms"], "manifest": m}

    page = run_page(manifests, args.runs)
    single = run_page(manifests, args.runs, "?threads=0")
    print(f"browser: Chromium {page['browser']}", flush=True)
    for man in manifests:
        r = rows[man]
        r["py_ms"].append(python_latency(r["runner"], r["feed0"], args.runs))

    print("\n| file | samples | max diff vs Python LiteRT | max diff vs expected PNG | "
          "browser p50 (ms) | browser, 1 thread | Python LiteRT p50 (ms) | "
          "Python invoke only (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for man, res, res1 in zip(manifests, page["files"], single["files"]):
        r = rows[man]
        base = os.path.dirname(man)
        d_py = d_exp = 0
        for i, s in enumerate(res["samples"]):
            got = page_levels(s, s.get("probs"))  # a segmenter's map as check_samples maps it
            path = os.path.join(base, r["manifest"]["samples"][i]["expected"])
            exp = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
            py = np.broadcast_to(r["py"][i], got.shape)
            d_py = max(d_py, int(np.abs(got.astype(int) - py.astype(int)).max()))
            d_exp = max(d_exp, int(np.abs(got.astype(int) - exp.astype(int)).max()))
        name = os.path.relpath(os.path.join(base, r["manifest"]["model"]),
                               os.path.join(ROOT, "android_demo_assets"))
        rt = res["runtime"]
        b = res["benchmark"]
        py = " / ".join(f"{x:.1f}" for x in r["py_ms"])
        print(f"| `{name}` | {len(res['samples'])} | {d_py} | {d_exp} | "
              f"{b['p50_ms']:.1f} ({rt['threadCount']} threads) | "
              f"{res1['benchmark']['p50_ms']:.1f} | "
              f"{py} ({args.threads} threads) | "
              f"{r['py_invoke_ms']:.1f} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
