"""Video files in and out: read-ahead decoding, H.264 encoding beside the model.

* :class:`FrameReader` decodes a video (OpenCV) in a thread, a few frames ahead of
  the model, and hands out RGB frames.
* :func:`open_writer` writes RGB frames as **H.264** (libx264, ``yuv420p``, the index at
  the front with ``+faststart``) through the ffmpeg binary that the ``imageio-ffmpeg``
  wheel ships: the format browsers, phones and players accept. The input's frame rate
  is kept (as an exact rational, e.g. 30000/1001) and its audio track is copied (AAC,
  MP3 and Opus as they are, other codecs re-encoded to AAC). Frames go to ffmpeg's
  stdin from a writer thread, so encoding (another process) overlaps the model. When
  ffmpeg cannot be used, OpenCV's MPEG-4 Part 2 (``mp4v``) writer takes over, without
  audio, and :attr:`VideoWriter.note` says so once.
* :func:`probe` reads a file's codecs, frame rate and audio from ffmpeg's description
  of it (no ffprobe needed); :func:`restore_video` ties it together, and
  :func:`restore_clip` restores a clip's faces with the photo path for
  ``tfface-restore``.

ffmpeg only ever opens local files here (``file:`` paths, ``-protocol_whitelist
file,pipe``) and only the container formats restore accepts (``-format_whitelist``),
so a video that is really a playlist cannot make it fetch anything.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np

from tfface.restore.model import FaceModel
from tfface.restore.photo import FacePipeline, restore_image
from tfface.restore.square import FaceLocator

__all__ = ["VideoWriteError", "VideoInfo", "FrameReader", "VideoWriter", "open_writer",
           "probe", "ffmpeg_exe", "restore_video", "restore_clip"]

DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi"
"""Containers ffmpeg may open as a source (the video extensions restore takes)."""
COPY_AUDIO = ("aac", "mp3", "opus")
"""Audio codecs an MP4 keeps as they are; others are re-encoded to AAC."""
H264_CRF = 18
"""libx264 quality (lower is better; 18 is visually lossless for most video)."""
H264_PRESET = "ultrafast"
"""libx264 speed preset. On a noisy 720p clip (``benchmarks/video_speed.py``'s output)
``ultrafast`` encodes at 8 ms of CPU a frame and ``veryfast`` at 22 ms (a third of the
whole budget at 25 fps on 2 cores) for a 1.5x smaller file; at CRF 18 both look the same."""


class VideoWriteError(OSError):
    """A restored video could not be written completely (nothing is kept)."""


_FFMPEG: list = []


def ffmpeg_exe() -> tuple[str | None, str]:
    """(path of the ffmpeg binary, '') or (None, why it cannot be used); cached.

    ``TFFACE_FFMPEG`` names another binary; ``TFFACE_FFMPEG=none`` disables ffmpeg.
    """
    if _FFMPEG:
        return _FFMPEG[0]
    env = os.environ.get("TFFACE_FFMPEG")
    if env and env.lower() == "none":
        result = (None, "TFFACE_FFMPEG=none")
    elif env:
        result = (env, "") if os.access(env, os.X_OK) else (None, f"TFFACE_FFMPEG={env} is "
                                                            "not an executable file")
    else:
        try:
            import imageio_ffmpeg

            result = (imageio_ffmpeg.get_ffmpeg_exe(), "")
        except ImportError:
            result = (None, "the imageio-ffmpeg package is not installed "
                            "(pip install imageio-ffmpeg)")
        except Exception as e:  # its binary is missing for this platform
            result = (None, f"imageio-ffmpeg has no ffmpeg binary here ({e})")
    _FFMPEG.append(result)
    return result


def _file_url(path: str) -> str:
    return "file:" + os.path.abspath(path)


@dataclass
class VideoInfo:
    """What a video file holds, as far as restoring needs to know."""

    width: int = 0
    height: int = 0
    fps: Fraction = Fraction(25)
    frames: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None


_STREAM = re.compile(r"Stream #\d+:\d+.*?: (Video|Audio): ([A-Za-z0-9_]+)(.*)")


def _fps_fraction(fps: float) -> Fraction:
    """A frame rate as the rational it most likely is: the NTSC rates (29.97 → 30000/1001,
    also 23.976, 47.952, 59.94, 119.88), else the nearest fraction with a denominator up
    to 1001; 25 for a missing or absurd rate."""
    if not (1.0 <= fps <= 240.0):
        return Fraction(25)
    for k in (24, 30, 48, 60, 120):
        ntsc = Fraction(k * 1000, 1001)
        if abs(fps - float(ntsc)) < 0.005:
            return ntsc
    f = Fraction(fps).limit_denominator(1001)
    return f if abs(float(f) - fps) < 1e-3 else Fraction(round(fps * 1000), 1000)


def probe(path: str) -> VideoInfo:
    """Size, frame rate and frame count (OpenCV) and codecs (ffmpeg's description of
    the file, when ffmpeg is there) of a video."""
    import cv2

    info = VideoInfo()
    cap = cv2.VideoCapture(path)
    if cap.isOpened():
        info.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        info.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        info.fps = _fps_fraction(float(cap.get(cv2.CAP_PROP_FPS) or 0.0))
        info.frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    cap.release()
    exe, _ = ffmpeg_exe()
    if exe is None:
        return info
    try:
        proc = subprocess.run([exe, "-hide_banner", "-nostdin", "-protocol_whitelist",
                               "file", "-format_whitelist", DEMUXERS, "-i", _file_url(path)],
                              capture_output=True, text=True, errors="replace", timeout=60)
    except (OSError, subprocess.SubprocessError):
        return info
    for m in _STREAM.finditer(proc.stderr):
        kind, codec = m.group(1), m.group(2)
        if kind == "Video" and info.video_codec is None:
            info.video_codec = codec
        elif kind == "Audio" and info.audio_codec is None:
            info.audio_codec = codec
    return info


class FrameReader:
    """RGB frames of a video, decoded by OpenCV in a thread up to ``ahead`` frames
    before they are asked for. Iterate once; :meth:`close` stops early."""

    def __init__(self, path: str, ahead: int = 4):
        import cv2

        self._cap = cv2.VideoCapture(path)
        self._q: queue.Queue = queue.Queue(maxsize=max(1, int(ahead)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tfface-decode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import cv2

        try:
            while not self._stop.is_set():
                ok, bgr = self._cap.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                while not self._stop.is_set():
                    try:
                        self._q.put(rgb, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        finally:
            self._cap.release()
            self._put_end()

    def _put_end(self) -> None:
        while True:
            try:
                self._q.put(None, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    return

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            frame = self._q.get()
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._q.get(timeout=0.1)
            except queue.Empty:
                pass
        self._thread.join()


class VideoWriter:
    """Writes RGB frames of one size to an MP4 file; see :func:`open_writer`."""

    codec = "?"
    note: str | None = None

    def write(self, rgb: np.ndarray) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def abort(self) -> None:
        """Stop without finishing the file (it is removed by the caller)."""
        try:
            self.close()
        except OSError:
            pass


class _OpenCVWriter(VideoWriter):
    codec = "mp4v"

    def __init__(self, path: str, size: tuple[int, int], fps: Fraction, note: str):
        import cv2

        self._w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
        if not self._w.isOpened():
            raise VideoWriteError(f"the MP4 writer cannot write {path}")
        self.note = note

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        self._w.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._w.release()


class _FFmpegWriter(VideoWriter):
    """H.264 through an ffmpeg process fed raw RGB on stdin by a writer thread."""

    codec = "h264"

    def __init__(self, exe: str, path: str, size: tuple[int, int], fps: Fraction,
                 audio_from: str | None = None, audio_codec: str | None = None,
                 ahead: int = 4, threads: int | None = None, crf: int = H264_CRF,
                 preset: str = H264_PRESET):
        w, h = size
        self.size = size
        # 4:2:0 needs even sides: an odd last row/column is repeated once (in numpy,
        # so the colour of the added pixels is exactly the edge's)
        self._pad = ((0, h % 2), (0, w % 2), (0, 0)) if w % 2 or h % 2 else None
        cmd = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w + w % 2}x{h + h % 2}",
               "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "pipe:0"]
        if audio_from is not None:
            cmd += ["-protocol_whitelist", "file", "-format_whitelist", DEMUXERS,
                    "-i", _file_url(audio_from), "-map", "0:v:0", "-map", "1:a:0"]
            cmd += ["-c:a", "copy"] if audio_codec in COPY_AUDIO else ["-c:a", "aac",
                                                                       "-b:a", "192k"]
        # BT.709 (HD's matrix) converts and tags the stream: an untagged 720p file is
        # shown with BT.709 by browsers, so a BT.601 conversion (ffmpeg's default) would
        # shift its colours by up to 14 levels there.
        cmd += ["-vf", "scale=out_color_matrix=bt709:out_range=tv", "-colorspace", "bt709",
                "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
                "-c:v", "libx264", "-preset", str(preset), "-crf", str(int(crf)),
                "-pix_fmt", "yuv420p", "-movflags", "+faststart"]
        if threads:
            cmd += ["-threads", str(int(threads))]
        cmd += ["-f", "mp4", _file_url(path)]
        self._err = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=self._err)
        self._q: queue.Queue = queue.Queue(maxsize=max(1, int(ahead)))
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tfface-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stdin = self._proc.stdin
        while True:
            frame = self._q.get()
            if frame is None:
                break
            if self._failed is not None:
                continue  # drain: the caller learns of the failure on its next call
            try:
                stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
            except (OSError, ValueError) as e:  # ffmpeg exited (disk full, bad option)
                self._failed = e
        try:
            stdin.close()
        except OSError as e:
            self._failed = self._failed or e

    def _reason(self) -> str:
        self._err.seek(0)
        lines = [ln.strip() for ln in self._err.read().decode("utf-8", "replace").splitlines()
                 if ln.strip()]
        code = self._proc.returncode
        if lines:
            return lines[-1]
        if code is not None and code < 0:
            import signal

            name = signal.Signals(-code).name if -code in signal.valid_signals() else -code
            # SIGXFSZ: the file grew past the process's size limit (as a full disk)
            return f"ffmpeg was stopped by {name}" + (" (file too large)"
                                                       if name == "SIGXFSZ" else "")
        return f"ffmpeg exited with status {code}"

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[1::-1] != tuple(self.size):
            raise VideoWriteError(f"frame of {rgb.shape[1]}x{rgb.shape[0]} in a "
                                  f"{self.size[0]}x{self.size[1]} video")
        if self._failed is not None or self._proc.poll() is not None:
            self.abort()
            raise VideoWriteError(f"ffmpeg stopped: {self._reason()}")
        self._q.put(rgb if self._pad is None else np.pad(rgb, self._pad, mode="edge"))

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        code = self._proc.wait()
        reason = self._reason() if code else ""
        self._err.close()
        if code or self._failed is not None:
            raise VideoWriteError(f"ffmpeg could not write the video: {reason or self._failed}")

    def abort(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._q.put(None)
        self._thread.join()
        self._proc.wait()


def open_writer(path: str, size: tuple[int, int], fps: Fraction, *,
                audio_from: str | None = None, audio_codec: str | None = None,
                threads: int | None = None, crf: int = H264_CRF,
                preset: str = H264_PRESET) -> VideoWriter:
    """An H.264 writer (ffmpeg), or OpenCV's mp4v writer with a :attr:`~VideoWriter.note`
    when ffmpeg cannot be used. ``audio_from``: a file whose first audio track (codec
    ``audio_codec``) is copied into the output."""
    exe, why = ffmpeg_exe()
    if exe is not None:
        try:
            return _FFmpegWriter(exe, path, size, fps, audio_from, audio_codec,
                                 threads=threads, crf=crf, preset=preset)
        except OSError as e:
            why = f"ffmpeg ({exe}) cannot be started: {e.strerror or e}"
    note = (f"{why}; writing MPEG-4 Part 2 (mp4v) without audio instead of H.264, "
            "which browsers and many phones do not play")
    return _OpenCVWriter(path, size, fps, note)


def _frame_count(path: str) -> int:
    import cv2

    cap = cv2.VideoCapture(path)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    return n


def restore_video(src: str, dst: str, restore_frame, *, quiet: bool = False,
                  notes=None) -> int:
    """Restore every frame of ``src`` with ``restore_frame(rgb) -> rgb`` into ``dst``;
    returns the number of frames written (0: none could be read, nothing written).

    Decoding runs a few frames ahead in a thread and encoding in ffmpeg beside the
    model; a progress bar shows frames per second. ``dst`` appears only when the
    written file reads back with every frame (a full disk would otherwise leave a file
    without its index). ``notes`` (a callable) receives the writer's fallback note.

    Raises:
        VideoWriteError: the file could not be written completely; ``dst`` is untouched
            and the temporary file removed.
    """
    from tqdm.auto import tqdm

    from tfface.fileio import atomic_path

    info = probe(src)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    reader = FrameReader(src)
    writer = None
    n = 0
    try:
        with atomic_path(dst) as tmp, tqdm(total=info.frames, desc=os.path.basename(src),
                                           unit="frame", disable=quiet,
                                           file=sys.stderr) as bar:
            try:
                for rgb in reader:
                    out = restore_frame(rgb)
                    if writer is None:
                        size = (out.shape[1], out.shape[0])
                        audio = src if info.audio_codec else None
                        writer = open_writer(tmp, size, info.fps, audio_from=audio,
                                             audio_codec=info.audio_codec)
                        if writer.note and notes is not None:
                            notes(writer.note)
                    writer.write(out)
                    n += 1
                    bar.update(1)
                if writer is not None:
                    w, writer = writer, None
                    w.close()
            except VideoWriteError as e:
                if writer is not None:
                    writer.abort()
                if not _looks_like_full_disk(str(e)):
                    raise
                got, total = _frame_count(tmp), max(info.frames or 0, n)
                raise VideoWriteError(
                    f"the written video is incomplete ({got} of {total} frames read back; "
                    "is the disk full?)") from e
            except BaseException:
                if writer is not None:
                    writer.abort()
                raise
            if n:
                got = _frame_count(tmp)
                if got != n:
                    raise VideoWriteError(
                        f"the written video is incomplete ({got} of {n} frames read back; "
                        "is the disk full?)")
    finally:
        reader.close()
    return n


def _looks_like_full_disk(message: str) -> bool:
    m = message.lower()
    return any(k in m for k in ("no space", "file too large", "quota", "i/o error"))


def restore_clip(src: str, dst: str, restorer: FaceModel, locator: FacePipeline | FaceLocator,
                 mask: np.ndarray | None = None, compose: bool = False, *,
                 detect_every: int = 5, quiet: bool = False, notes=None) -> int:
    """Restore every frame of a video (:func:`restore_video`) with
    :func:`~tfface.restore.photo.restore_image`: on the face path, faces are tracked
    across frames (detected every ``detect_every`` frames) and their landmarks, holes
    and fills smoothed in time; returns the number of frames written."""
    locator.start_video(float(probe(src).fps), detect_every=detect_every)
    try:
        return restore_video(
            src, dst, lambda rgb: restore_image(restorer, rgb, locator, mask, compose),
            quiet=quiet, notes=notes)
    finally:
        locator.end_video()
