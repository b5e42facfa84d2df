"""Face PSNR of the SR path in whole photos: model (pasted back) against bicubic.

    PYTHONPATH=$PWD python benchmarks/restore_sr_quality.py /work/shared/data/faces-dev \\
        --model android_demo_assets/srgan/model_int8_mixed.tflite --count 30

Each held-out photo is resized to a square of ``--face-px`` (HR), placed on a 2x-wider
grey canvas, and the canvas is shrunk by the model's scale (antialiased bicubic, as in
training, or ``--downscale area``) into the LR photo;
``FacePipeline`` restores it (face by the model, the rest bicubic). PSNR (8-bit RGB) is taken
over the HR square of the face only, for the pipeline's output and for plain bicubic.
``--face-px 128`` gives LR faces of the model's own input size (32 px for x4); larger
values send the face through the overlapping-tile path. ``--path native`` uses
:class:`tfface.restore.sr.NativeSRPipeline` (every face cut out at its own resolution,
none warped up to the model's input) instead of the restore path's ``FacePipeline``.

For faces of many sizes in whole scenes with a real background, SSIM, sharpness and time
per part, see ``benchmarks/photo_sr.py``.
"""

from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

import tfface  # noqa: F401


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 100.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--model", required=True)
    p.add_argument("--count", type=int, default=30)
    p.add_argument("--face-px", type=int, nargs="+", default=[128, 256])
    p.add_argument("--detector", default="mtcnn")
    p.add_argument("--downscale", default="bicubic", choices=("bicubic", "area"),
                   help="LR synthesis: antialiased bicubic (the models' training) or area")
    p.add_argument("--path", default="pipeline", choices=("pipeline", "native"),
                   help="pipeline: FacePipeline, as pipelines.restore; native: "
                   "NativeSRPipeline (faces at their own resolution)")
    args = p.parse_args(argv)
    import tensorflow as tf

    from tfface.faces import make_detector
    from tfface.restore.photo import FacePipeline
    from tfface.restore.sr import NativeSRPipeline
    from tfface.data.sources.scan import read_photo
    from tfface.restore.model import Restorer

    restorer = Restorer.load(args.model)
    k = int(restorer.spec.scale)
    cls = NativeSRPipeline if args.path == "native" else FacePipeline
    pipe = cls(make_detector(args.detector), min_face=8)
    files = sorted(f for f in os.listdir(args.folder) if f.endswith(".jpg"))
    files = files[:: max(1, len(files) // args.count)][: args.count]
    for face_px in args.face_px:
        got, bic, restored, tiled = [], [], 0, 0
        for f in files:
            rgb = read_photo(os.path.join(args.folder, f))
            s = min(rgb.shape[:2])
            sq = rgb[(rgb.shape[0] - s) // 2:][:s, (rgb.shape[1] - s) // 2:][:, :s]
            hr_face = cv2.resize(sq, (face_px, face_px), interpolation=cv2.INTER_AREA
                                 if s > face_px else cv2.INTER_CUBIC)
            hr = np.full((face_px * 3 // 2, face_px * 2, 3), 128, np.uint8)
            x0, y0 = face_px // 2, face_px // 4
            hr[y0:y0 + face_px, x0:x0 + face_px] = hr_face
            lr_hw = (hr.shape[0] // k, hr.shape[1] // k)
            if args.downscale == "area":
                lr = cv2.resize(hr, lr_hw[::-1], interpolation=cv2.INTER_AREA)
            else:
                lr = tf.image.resize(hr.astype(np.float32), lr_hw, "bicubic", antialias=True)
                lr = np.clip(np.round(lr.numpy()), 0, 255).astype(np.uint8)
            out, rep = pipe.restore(restorer, lr)
            restored += rep.restored
            tiled += rep.tiled
            b = cv2.resize(lr, hr.shape[1::-1], interpolation=cv2.INTER_CUBIC)
            sl = (slice(y0, y0 + face_px), slice(x0, x0 + face_px))
            got.append(psnr(out[sl], hr[sl]))
            bic.append(psnr(b[sl], hr[sl]))
        print(f"HR face {face_px} px (LR {face_px // k} px), {len(files)} photos: "
              f"{restored} faces by the model ({tiled} in tiles); face PSNR pipeline "
              f"{np.mean(got):.2f} dB, bicubic {np.mean(bic):.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
