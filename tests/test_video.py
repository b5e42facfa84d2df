"""Videos: H.264 out at the input's frame rate with its audio, faces tracked between
detections, a steady fill on a still face, and a clear fallback without ffmpeg.

Clips are made here: the astronaut (``skimage.data.astronaut()``, public domain) with a
grey mask-like ellipse over her mouth and nose, a few frames, small.
"""

from __future__ import annotations

import os
import subprocess
from fractions import Fraction

import cv2
import numpy as np
import pytest

from tfface.restore import video as videoio
from tfface.faces import align as al

skimage_data = pytest.importorskip("skimage.data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "android_demo_assets")
VNET = os.path.join(ASSETS, "vnet", "model_int8_mixed.tflite")
SEGMENTER = os.path.join(ASSETS, "segmenter", "segmenter_int8.tflite")
FFMPEG, _WHY = videoio.ffmpeg_exe()
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason=f"no ffmpeg: {_WHY}")


@pytest.fixture(scope="module")
def blazeface():
    from tfface.faces import make_detector

    return make_detector("blazeface")


@pytest.fixture(scope="module")
def masked_head(blazeface):
    """The astronaut's head (square around the face), a grey ellipse over mouth and
    nose, and the ellipse's mask."""
    rgb = skimage_data.astronaut()
    lm = blazeface.detect(rgb)[0].landmarks.astype(np.float64)
    c, d = lm[:2].mean(0), np.linalg.norm(lm[1] - lm[0])
    half = int(2.2 * d)
    x0, y0 = int(c[0]) - half, int(c[1]) - half
    head = rgb[y0:y0 + 2 * half, x0:x0 + 2 * half].copy()
    mask = np.zeros(head.shape[:2], np.uint8)
    mouth = lm[3:].mean(0) - [x0, y0]
    centre, axes = (int(mouth[0]), int(mouth[1] - 0.2 * d)), (int(0.8 * d), int(0.55 * d))
    cv2.ellipse(head, centre, axes, 0, 0, 360, (200, 205, 210), -1)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
    return head, mask.astype(bool)


def _frames(head, mask, n, size=(256, 192), scale=0.6, shift=(0.0, 0.0), noise=1.0, seed=0):
    """``n`` frames of the head on a plain background moving by ``shift`` px a frame,
    with sensor noise; and the mask in each frame."""
    rng = np.random.default_rng(seed)
    w, h = size
    frames, masks = [], []
    for i in range(n):
        m = cv2.getRotationMatrix2D((head.shape[1] / 2, head.shape[0] / 2), 0, scale)
        m[:, 2] += np.array([w / 2 + shift[0] * i, h / 2 + shift[1] * i]) - \
            [head.shape[1] / 2, head.shape[0] / 2]
        f = np.full((h, w, 3), (110, 130, 150), np.float32)
        cv2.warpAffine(head.astype(np.float32), m, (w, h), dst=f, flags=cv2.INTER_AREA,
                       borderMode=cv2.BORDER_TRANSPARENT)
        f += rng.normal(0, noise, f.shape)
        frames.append(np.clip(np.round(f), 0, 255).astype(np.uint8))
        masks.append(cv2.warpAffine(mask.astype(np.float32), m, (w, h)) > 0.5)
    return frames, masks


def _write_mp4v(path, frames, fps):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                        frames[0].shape[1::-1])
    for f in frames:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()


def _describe(path) -> str:
    """ffmpeg's own description of a file (its streams), as a player would see it."""
    return subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-i", str(path)],
                          capture_output=True, text=True).stderr


def _count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def _flicker(frames, masks, erode=2) -> float:
    k = np.ones((2 * erode + 1, 2 * erode + 1), np.uint8)
    vals = []
    for t in range(1, len(frames)):
        r = cv2.erode((masks[t] & masks[t - 1]).astype(np.uint8), k) > 0
        d = np.abs(frames[t].astype(np.float32) - frames[t - 1].astype(np.float32))
        vals.append(float(d[r].mean()))
    return float(np.mean(vals))


@needs_ffmpeg
def test_restored_video_is_h264_at_the_input_rate_with_every_frame(masked_head, tmp_path,
                                                                   capsys):
    """A 10-frame 29.97 fps MPEG-4 Part 2 clip of a masked face, restored by the CLI with
    the shipped V-Net: H.264 (yuv420p, index first) at 30000/1001 fps, 10 frames, the
    face restored inside the mask and nothing changed far from it."""
    from pipelines import restore as restore_cli

    head, mask = masked_head
    frames, masks = _frames(head, mask, 10, shift=(1.0, 0.5))
    src = tmp_path / "clip.mp4"
    _write_mp4v(src, frames, 30000 / 1001)
    out = tmp_path / "out"
    assert restore_cli.main([str(src), "--model", VNET, "--face-detector", "blazeface",
                             "--out", str(out), "--quiet"]) == 0
    assert "note:" not in capsys.readouterr().err
    dst = out / "clip_mp4.mp4"
    info = _describe(dst)
    assert "Video: h264" in info and "yuv420p" in info and "29.97 fps" in info, info
    assert videoio.probe(str(dst)).fps == Fraction(30000, 1001)
    data = dst.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # +faststart: plays while loading
    assert _count(dst) == 10
    cap, given = cv2.VideoCapture(str(dst)), cv2.VideoCapture(str(src))
    for i in range(10):
        res = cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB).astype(np.float32)
        decoded = cv2.cvtColor(given.read()[1], cv2.COLOR_BGR2RGB).astype(np.float32)
        diff = np.abs(res - decoded).mean(-1)
        inner = cv2.erode(masks[i].astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        far = cv2.dilate(masks[i].astype(np.uint8), np.ones((41, 41), np.uint8)) == 0
        # the grey ellipse is replaced by a face (measured: ~20 levels inside, ~1 far
        # away, which is H.264's own error)
        assert diff[inner].mean() > 8, (i, diff[inner].mean())
        assert diff[far].mean() < 3, (i, diff[far].mean())
    cap.release()
    given.release()


@needs_ffmpeg
@pytest.mark.parametrize("audio", ["aac", "pcm_s16le"])
def test_the_audio_track_is_kept(tmp_path, audio):
    """An AAC track is copied as it is; a PCM track (not for MP4 players) becomes AAC."""
    src = tmp_path / ("in.mp4" if audio == "aac" else "in.mov")
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-f", "lavfi",
                    "-i", "sine=frequency=440:sample_rate=16000", "-t", "1",
                    "-c:v", "mpeg4", "-c:a", audio, str(src)], check=True)
    assert f"Audio: {audio}" in _describe(src)
    dst = tmp_path / "out.mp4"
    n = videoio.restore_video(str(src), str(dst), lambda rgb: 255 - rgb, quiet=True)
    assert n == 10 and _count(dst) == 10
    info = _describe(dst)
    assert "Video: h264" in info and "Audio: aac" in info, info
    cap = cv2.VideoCapture(str(dst))
    ok, bgr = cap.read()
    cap.release()
    first = cv2.VideoCapture(str(src)).read()[1]
    assert np.abs(bgr.astype(int) - (255 - first.astype(int))).mean() < 6  # inverted frame


def test_without_ffmpeg_the_video_is_mp4v_with_one_note(masked_head, tmp_path, capsys,
                                                        monkeypatch):
    from pipelines import restore as restore_cli

    monkeypatch.setenv("TFFACE_FFMPEG", "none")
    monkeypatch.setattr(videoio, "_FFMPEG", [])
    head, mask = masked_head
    frames, _ = _frames(head, mask, 4)
    for name in ("a.mp4", "b.mp4"):
        _write_mp4v(tmp_path / name, frames, 12)
    out = tmp_path / "out"
    assert restore_cli.main([str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "--model", VNET,
                             "--face-detector", "blazeface", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr()
    notes = [ln for ln in printed.err.splitlines() if "mp4v" in ln]
    assert notes == ["note: TFFACE_FFMPEG=none; writing MPEG-4 Part 2 (mp4v) without audio "
                     "instead of H.264, which browsers and many phones do not play"], printed.err
    assert "Restored 2 file(s)" in printed.out
    for name in ("a_mp4.mp4", "b_mp4.mp4"):
        assert _count(out / name) == 4
        if FFMPEG is not None:
            assert "Video: mpeg4" in _describe(out / name)


def test_detect_every_must_be_positive(tmp_path, capsys):
    from pipelines import restore as restore_cli

    assert restore_cli.main([str(tmp_path / "x.mp4"), "--model", VNET,
                             "--detect-every", "0"]) == 2
    assert "--detect-every must be at least 1, got 0" in capsys.readouterr().err


class _Counting:
    """A full detector that counts its calls."""

    def __init__(self, det):
        self.det, self.calls = det, 0

    def detect(self, rgb):
        self.calls += 1
        return self.det.detect(rgb)


def test_tracker_detects_every_k_frames_follows_between_and_redetects_a_lost_face(
        masked_head, blazeface):
    """A face moving 3 px a frame: the full detector runs on frames 0, 5, 10 only and
    the face is followed in between (its eyes within 3 px of where it moves); when the
    face leaves, the search fails and a full detection runs at once; a face that
    reappears elsewhere is found at the next scheduled detection."""
    from tfface.faces.track import FaceTracker

    head, mask = masked_head
    frames, _ = _frames(head, mask, 12, size=(320, 240), scale=0.5, shift=(3.0, 1.0))
    full = _Counting(blazeface)
    tracker = FaceTracker(full, every=5, fps=25.0)
    first = None
    for i, f in enumerate(frames):
        tracks = tracker(f)
        assert len(tracks) == 1, i
        eyes = tracks[0].raw.landmarks[:2].mean(0)
        if first is None:
            first = eyes
        moved = eyes - first
        assert np.abs(moved - [3.0 * i, 1.0 * i]).max() < 3.0, (i, moved)
        assert tracks[0].id == 0
    assert full.calls == 3  # frames 0, 5 and 10

    blank = np.full_like(frames[0], 120)
    tracker(blank)  # frame 12: lost → a full detection at once; the face is held
    assert full.calls == 4 and len(tracker.tracks) == 1 and tracker.tracks[0].missed == 1
    for _ in range(3):  # frames 13-15: held for 3 frames, then dropped
        tracker(blank)
    assert tracker.tracks == [] and full.calls == 7
    other, _ = _frames(head, mask, 1, size=(320, 240), scale=0.5, shift=(0, 0))
    moved = np.roll(other[0], -60, axis=1)
    for _ in range(16, 20):  # no detection is due before frame 20
        assert tracker(moved) == []
    assert full.calls == 7
    assert len(tracker(moved)) == 1 and full.calls == 8


def test_a_still_face_gets_a_steady_fill(masked_head, blazeface):
    """A still masked face with sensor noise (sigma 1), 16 frames: inside the mask the
    restored video changes from frame to frame at most 1.2 times as much as the input
    does, and less than the photo path run on each frame (which boils with the noise)."""
    from tfface.restore.photo import FacePipeline
    from tfface.segmenter.infer import OccluderSegmenter
    from tfface.restore.model import Restorer

    head, mask = masked_head
    frames, masks = _frames(head, mask, 16, size=(256, 192), scale=0.6, noise=1.0)
    restorer = Restorer.load(VNET)
    pipe = FacePipeline(blazeface, OccluderSegmenter(SEGMENTER))
    photo = [pipe.restore(restorer, f)[0] for f in frames]
    pipe.start_video(25.0)
    video = [pipe.restore(restorer, f)[0] for f in frames]
    pipe.end_video()
    f_in, f_photo, f_video = (_flicker(x, masks) for x in (frames, photo, video))
    restored = np.abs(video[-1].astype(np.float32) - frames[-1])[masks[-1]].mean()
    assert restored > 8, restored  # the mask was filled, not left as it was
    # measured: input 1.13, photo path 2.3, video path 0.5
    assert f_video <= 1.2 * f_in and f_video < 0.7 * f_photo, (f_in, f_photo, f_video)


def test_temporal_fill_averages_a_still_crop_and_restarts_on_a_cut():
    from tfface.restore.photo import TemporalFill

    rng = np.random.default_rng(0)
    crop = rng.integers(60, 200, (64, 64, 3)).astype(np.uint8)
    crop = cv2.GaussianBlur(crop, (9, 9), 3)
    hole = np.zeros((64, 64), bool)
    hole[30:50, 16:48] = True
    tf = TemporalFill()
    a = np.full((64, 64, 3), 100, np.uint8)
    b = np.full((64, 64, 3), 150, np.uint8)
    p = tf.probability(crop, hole.astype(np.float32))
    assert np.array_equal(p, hole.astype(np.float32))
    assert np.array_equal(tf.fill(crop, hole, a), a)  # the first frame is its own
    tf.probability(crop, hole.astype(np.float32))
    step = tf.fill(crop, hole, b)  # a still crop: the new fill is averaged in (rate 0.2)
    assert np.all(step == 110), np.unique(step)
    cut = crop // 3  # another scene: starts afresh
    tf.probability(cut, np.zeros((64, 64), np.float32))
    assert tf.change > tf.cut
    assert np.array_equal(tf.fill(cut, hole, b), b)


def test_temporal_fill_does_not_count_the_occluders_rim_as_motion():
    """The hole takes the occluder's uncertain rim (probability above the segmenter's edge
    threshold, 0.1): a rim that changes between frames (the mask's edge flickering in the
    sensor noise) is not the face moving, so the averages keep their still-face rates."""
    from tfface.restore.photo import TemporalFill

    rng = np.random.default_rng(1)
    crop = cv2.GaussianBlur(rng.integers(60, 200, (64, 64, 3)).astype(np.uint8), (9, 9), 3)
    prob = np.zeros((64, 64), np.float32)
    prob[20:60, 4:60] = 0.3  # the rim: below 0.5, above the edge threshold
    prob[32:48, 16:48] = 0.9  # the confident hole
    moved = crop.copy()
    moved[20:60, 4:60] = 255 - moved[20:60, 4:60]  # only the rim and hole change
    changes = {}
    for edge in (0.1, 0.5):
        tf = TemporalFill()
        tf.probability(crop, prob, edge=edge)
        tf.probability(moved, prob, edge=edge)
        changes[edge] = tf.change
    assert changes[0.1] < 1.0, changes  # nothing outside the rim moved
    assert changes[0.5] > 5 * max(changes[0.1], 0.2), changes  # the rim read as motion


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@needs_ffmpeg
def test_chromium_plays_the_restored_video(tmp_path):
    """Headless Chromium (Debian's, as the web demo test uses) loads a written H.264
    file in a <video> element and draws its first frame: the size (odd 1281x721 frames
    are padded to 1282x722 by repeating their last row and column) and the colours come
    back (an HD stream converted with BT.601 and not tagged came back as 214, 72, 31 for
    200, 60, 30). An MPEG-4 Part 2 file fails here with MEDIA_ERR_SRC_NOT_SUPPORTED."""
    browser = _chromium()
    if browser is None:
        if os.environ.get("TFFACE_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    frame = np.full((721, 1281, 3), (200, 60, 30), np.uint8)
    frame[:, -1] = (30, 60, 200)  # the last column, repeated into the added one
    writer = videoio.open_writer(str(tmp_path / "out.mp4"), (1281, 721), Fraction(10))
    for _ in range(3):
        writer.write(frame)
    writer.close()
    page = tmp_path / "page.html"
    page.write_text("""<!doctype html><title>pending</title>
<video id=v muted preload=auto src=out.mp4></video>
<script>
const v = document.getElementById('v');
v.addEventListener('error', () => { document.title = 'error ' + (v.error && v.error.code); });
v.addEventListener('loadeddata', () => {
  const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0);
  const p = g.getImageData(640, 360, 1, 1).data, q = g.getImageData(1281, 360, 1, 1).data;
  document.title = `played ${v.videoWidth}x${v.videoHeight} ${p[0]} ${p[1]} ${p[2]} ` +
    `${q[0]} ${q[1]} ${q[2]}`;
});
</script>""")
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--allow-file-access-from-files", "--virtual-time-budget=10000",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True,
                          timeout=120)
    start = proc.stdout.find("<title>")
    title = proc.stdout[start + 7:proc.stdout.find("</title>")] if start >= 0 else proc.stdout
    assert title.startswith("played 1282x722 "), (title, proc.stderr[-1000:])
    rgb = np.array([int(v) for v in title.split()[2:]])
    assert np.abs(rgb - [200, 60, 30, 30, 60, 200]).max() < 12, rgb
