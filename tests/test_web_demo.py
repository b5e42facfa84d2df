"""The web demo (web_demo/) in a real browser: headless Chromium opens the page from a
loopback server, the page runs every shipped .tflite on its sample inputs with LiteRT.js
(WebAssembly), fed as the model card says, and its outputs must equal the expected PNGs
within the samples file's tolerance; the same restore is done once through the page's
controls (file inputs, a painted hole, the Restore button, a dropped photo), with the
pasted-back photo and, when the occluder segmenter ships, the hole it finds.

Needs Debian's chromium, Node.js and ``npm ci --prefix web_demo``; without them the tests
skip, saying what is missing, unless TFFACE_REQUIRE_BROWSER=1 (set by .ci/run), which
makes them fail instead.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import shutil
import subprocess

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEB = os.path.join(ROOT, "web_demo")
MANIFESTS = sorted(os.path.relpath(p, ROOT) for p in
                   glob.glob(os.path.join(ROOT, "android_demo_assets", "*", "*_samples.json")))
IDS = [os.path.basename(os.path.dirname(m)) for m in MANIFESTS]


def browser_setup() -> tuple[str | None, str | None, list[str]]:
    """(chromium, node, what is missing)."""
    chromium = (os.environ.get("TFFACE_CHROMIUM") or shutil.which("chromium")
                or shutil.which("chromium-browser"))
    node = shutil.which("node")
    missing = []
    if not chromium:
        missing.append("chromium (apt-get install chromium)")
    if not node:
        missing.append("node (Node.js 20)")
    absent = [pkg for pkg in ("playwright-core", "@litertjs/core")
              if not os.path.isfile(os.path.join(WEB, "node_modules", pkg, "package.json"))]
    if absent:
        missing.append(f"{', '.join(absent)} in web_demo/node_modules (npm ci --prefix web_demo)")
    return chromium, node, missing


def load_serve():
    """web_demo/serve.py by its path (web_demo is not an installed package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("web_demo_serve", os.path.join(WEB, "serve.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def rgb(entry: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(entry["rgb"]), np.uint8).reshape(
        entry["height"], entry["width"], 3)


def expected(manifest: str, index: int) -> tuple[np.ndarray, int]:
    m = json.load(open(os.path.join(ROOT, manifest)))
    path = os.path.join(ROOT, os.path.dirname(manifest), m["samples"][index]["expected"])
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), \
        int(m["tolerance"]["max_abs_levels"])


def page_levels(entry: dict, probs_b64: str | None) -> np.ndarray:
    """The page's output in 8-bit levels: its RGB for an image output; for a one-channel
    output (a segmenter's hole probabilities) the raw values mapped as check_samples maps
    every output (tfface.imageio.to_uint8), the encoding of those expected PNGs."""
    if not probs_b64:
        return rgb(entry)
    from tfface.imageio import to_uint8

    p = np.frombuffer(base64.b64decode(probs_b64), np.float32).reshape(
        entry["height"], entry["width"], 1)
    return np.repeat(to_uint8(p), 3, axis=2)


def max_levels(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape, (a.shape, b.shape)
    return int(np.max(np.abs(a.astype(int) - b.astype(int))))


@pytest.fixture(scope="module")
def page_run():
    """One browser session over every shipped file (about 15 s)."""
    chromium, node = need_browser_setup()
    serve = load_serve()

    server, url = serve.start_in_thread(quiet=True)
    try:
        proc = subprocess.run(
            [node, os.path.join(WEB, "browser_check.mjs"), "--url", url, "--chromium", chromium,
             "--root", ROOT, "--timeout", "60000", "--ui", *MANIFESTS],
            capture_output=True, text=True, timeout=240, cwd=ROOT)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert [f["manifest"] for f in out["files"]] == MANIFESTS
    return out


def need_browser_setup(need_chromium: bool = True) -> tuple[str, str]:
    chromium, node, missing = browser_setup()
    if not need_chromium:
        missing = [m for m in missing if not m.startswith("chromium")]
    if missing:
        msg = "the browser test needs " + ", ".join(missing)
        if os.environ.get("TFFACE_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " (TFFACE_REQUIRE_BROWSER=1: not skipped)", pytrace=False)
        pytest.skip(msg)
    return chromium, node


def test_card_reading_in_node():
    """web_demo/restorer.test.mjs: the page's reading of cards (shipped, per-input,
    uint8 I/O, refused ones), in Node without a browser (under a second)."""
    _, node = need_browser_setup(need_chromium=False)
    proc = subprocess.run([node, "--test", os.path.join(WEB, "restorer.test.mjs")],
                          capture_output=True, text=True, timeout=60, cwd=WEB)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
    assert "# fail 0" in proc.stdout and "# pass 0" not in proc.stdout


def listed() -> list[dict]:
    """web_demo/models.json, each entry with its manifest as a path from the root."""
    entries = json.load(open(os.path.join(WEB, "models.json")))["models"]
    return [{**m, "path": os.path.relpath(os.path.normpath(os.path.join(WEB, m["manifest"])), ROOT)}
            for m in entries]


def test_every_shipped_file_is_listed_in_the_page():
    paths = [m["path"] for m in listed()]
    assert MANIFESTS and set(MANIFESTS) <= set(paths), sorted(set(MANIFESTS) - set(paths))
    assert len(paths) == len(set(paths))


def test_the_page_offers_exactly_the_shipped_files(page_run):
    # a listed file this checkout does not ship (e.g. the segmenter before it lands) is left out
    assert sorted(page_run["offered"]) == MANIFESTS
    finder = [m["path"] for m in listed() if m.get("finds_hole")]
    assert page_run["finderListed"] == any(p in MANIFESTS for p in finder)
    absent = {p for p in (m["path"] for m in listed()) if p not in MANIFESTS}
    for line in page_run["failed"]:  # the only failed requests: the page's checks for those
        assert line.startswith("404 ") and any(line.endswith("/" + p) for p in absent), line


@pytest.mark.parametrize("manifest", MANIFESTS, ids=IDS)
def test_page_output_equals_the_expected_pngs(page_run, manifest):
    res = next(f for f in page_run["files"] if f["manifest"] == manifest)
    n = len(json.load(open(os.path.join(ROOT, manifest)))["samples"])
    assert len(res["samples"]) == n >= 3
    for i, got in enumerate(res["samples"]):
        want, tol = expected(manifest, i)
        diff = max_levels(page_levels(got, got.get("probs")), want)
        assert diff <= tol, f"sample {i}: the page's output differs by {diff} levels (> {tol})"
        assert got["ms"] > 0


@pytest.mark.parametrize("manifest", MANIFESTS, ids=IDS)
def test_restore_through_the_page_controls(page_run, manifest):
    ui = next(f for f in page_run["files"] if f["manifest"] == manifest)["ui"]
    assert ui["status"] == ""
    assert "ms" in ui["latencyText"] and "WASM" in ui["latencyText"], ui["latencyText"]
    want, tol = expected(manifest, 0)
    assert ui["after"] is not None, "no result shown"
    assert max_levels(page_levels(ui["after"], ui["probs"]), want) <= tol
    m = json.load(open(os.path.join(ROOT, manifest)))
    target = cv2.imread(os.path.join(ROOT, os.path.dirname(manifest), m["samples"][0]["target"]))
    # the dropped photo is in use: its centred square, resized to the model's input
    assert ui["dropped"] == [target.shape[1], target.shape[0]]
    fed = rgb(ui["droppedInput"]).astype(float)
    side = fed.shape[0]
    want_in = cv2.resize(cv2.cvtColor(target, cv2.COLOR_BGR2RGB), (side, side),
                         interpolation=cv2.INTER_AREA).astype(float)
    if side == target.shape[0]:
        assert np.array_equal(fed, want_in)  # same size: copied exactly
    else:
        assert np.mean(np.abs(fed - want_in)) < 1.5  # area-like downscaling (nearest: 6)
    if "mask" in m["samples"][0]["inputs"]:
        # the stroke went across the middle from 1/4 to 3/4 of the width
        side = want.shape[0]
        hole = np.array(ui["painted"], np.uint8).reshape(side, side)
        row = side // 2
        assert hole[row, side // 4 + 4: 3 * side // 4 - 4].all()
        assert not hole[: side // 4].any() and not hole[3 * side // 4:].any()
        assert not hole[:, : side // 4 - 8].any() and not hole[:, 3 * side // 4 + 8:].any()


def test_paste_back_changes_only_the_hole(page_run):
    """"Download the whole photo": the output goes into the photo through the hole (grown
    by a pixel and feathered); every other pixel of the photo is its own."""
    inpaint = [m for m in MANIFESTS
               if "mask" in json.load(open(os.path.join(ROOT, m)))["samples"][0]["inputs"]]
    if not inpaint:
        pytest.skip("no shipped inpainting file")
    manifest = inpaint[0]
    ui = next(f for f in page_run["files"] if f["manifest"] == manifest)["ui"]
    m = json.load(open(os.path.join(ROOT, manifest)))
    base = os.path.join(ROOT, os.path.dirname(manifest))
    item = m["samples"][0]
    photo = cv2.cvtColor(cv2.imread(os.path.join(base, item["inputs"]["occluded"])),
                         cv2.COLOR_BGR2RGB)
    hole = (cv2.imread(os.path.join(base, item["inputs"]["mask"]), cv2.IMREAD_GRAYSCALE) > 127)
    want, tol = expected(manifest, 0)
    k = np.ones((3, 3), np.uint8)
    grow = lambda h, n: cv2.dilate(h.astype(np.uint8), k, iterations=n).astype(bool)  # noqa: E731

    # the crop is the whole photo: the hole holds the output, the rest is the photo
    full = rgb(ui["pasted"])
    assert full.shape == photo.shape
    assert np.array_equal(full[~grow(hole, 2)], photo[~grow(hole, 2)])
    inner = cv2.erode(hole.astype(np.uint8), k, iterations=1).astype(bool)
    assert inner.sum() > 100
    assert max_levels(full[inner], want[inner]) <= tol

    # a 96 px box at (24, 8): nothing outside it changes, nor outside its (scaled) hole
    small = rgb(ui["pastedSmallCrop"])
    box = np.zeros(hole.shape, bool)
    box[8:104, 24:120] = True
    assert np.array_equal(small[~box], photo[~box])
    placed = np.zeros(hole.shape, np.uint8)
    placed[8:104, 24:120] = cv2.resize(hole.astype(np.uint8), (96, 96),
                                       interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(small[~grow(placed, 3)], photo[~grow(placed, 3)])
    changed = np.abs(small.astype(int) - photo.astype(int)).mean(axis=2)
    inside = cv2.erode(placed, k, iterations=1).astype(bool)
    assert changed[inside].mean() > 5  # the hole's content was replaced


def test_the_shipped_segmenter_finds_the_hole(page_run):
    """"Find the occluder" in the hole step: the shipped occluder segmenter's map of the
    crop, resized to the inpainting model's mask, against the sample's true hole (IoU
    0.72, recall 0.92 measured on the V-Net's sample 0)."""
    if not page_run["finderListed"]:
        pytest.skip("no occluder segmenter is shipped in android_demo_assets")
    for manifest in MANIFESTS:
        m = json.load(open(os.path.join(ROOT, manifest)))
        item = m["samples"][0]
        if "mask" not in item["inputs"]:
            continue
        ui = next(f for f in page_run["files"] if f["manifest"] == manifest)["ui"]
        assert ui["foundStatus"] == ""
        true = cv2.imread(os.path.join(ROOT, os.path.dirname(manifest), item["inputs"]["mask"]),
                          cv2.IMREAD_GRAYSCALE) > 127
        found = np.array(ui["foundHole"], bool).reshape(true.shape)
        iou = (found & true).sum() / (found | true).sum()
        assert iou > 0.5 and (found & true).sum() / true.sum() > 0.8, iou


def test_the_page_runs_threaded_and_says_so(page_run):
    for f in page_run["files"]:
        rt = f["runtime"]
        # served cross-origin isolated, so LiteRT.js gets its threaded WebAssembly build
        assert rt["isolated"] and rt["threads"], rt
        assert rt["threadCount"] >= 1
        assert f"{rt['threadCount']} thread" in rt["backend"]


def test_files_that_do_not_fit_are_refused_in_one_line(page_run):
    if len(MANIFESTS) < 2:
        pytest.skip("needs two shipped files (one's model with the other's card)")
    bad = page_run["badInputs"]
    # one file's model with another's card: the first disagreement, named
    assert bad["wrongCard"]["status"].startswith("Model card: the card "), bad["wrongCard"]
    assert "input" in bad["wrongCard"]["status"]
    assert "not a .tflite" in bad["notTflite"]["status"]
    assert "not JSON" in bad["notJson"]["status"]
    for case in ("wrongCard", "notTflite", "notJson"):
        assert "\n" not in bad[case]["status"]
        assert bad[case]["info"] == bad["before"]  # the model in use stays loaded


def test_no_page_errors(page_run):
    errors = [line for line in page_run["log"] if line.startswith("pageerror")]
    assert not errors, errors
