"""Fine texture a restorer paints into the hole, against the true face's (an artifact check).

    python -m benchmarks.hole_texture --run android_demo_assets/vnet/keras \\
        --weights RUN_A/best.weights.h5 RUN_B/best.weights.h5 \\
        --data-dir ../shared/data/faces-dev --occlusions facemask sunglasses --images 96

PSNR rewards a blurry fill and a recognizer can be moved by patterns that are not a face,
so a generator trained against either can paint fine stripes or grids into holes that
neither number shows. This prints, per weights file, the mean high-pass magnitude
``|x - GaussianBlur(x, 1.5 px)|`` (grey levels, luminance) inside the hole (eroded by 2 px,
so the hole's edge does not count) of the restoration and of the true face there: a ratio
well below 1 is a smooth fill, a ratio that rises with training while PSNR does not is
texture to look at (``pipelines.evaluate`` writes the pictures).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import tfface  # noqa: F401


def high_pass(img: np.ndarray) -> np.ndarray:
    import cv2

    x = ((np.clip(img, -1, 1) + 1) * 127.5).astype(np.float32).mean(-1)
    return np.abs(x - cv2.GaussianBlur(x, (0, 0), 1.5))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run directory whose config builds the model")
    p.add_argument("--weights", nargs="+", required=True, help="*.weights.h5 files to compare")
    p.add_argument("--data-dir", required=True, help="held-out face folder (whole folder)")
    p.add_argument("--occlusions", nargs="+", default=["facemask", "sunglasses"],
                   help="occlusion generators drawn on the faces (default: facemask sunglasses)")
    p.add_argument("--images", type=int, default=96, help="faces to score (default 96)")
    args = p.parse_args(argv)

    from tfface.config import ConfigError
    from tfface.data.sources import SourceError

    try:
        return compare(args)
    except (ConfigError, SourceError, OSError, ValueError) as e:  # bad run, folder or weights
        print(f"hole_texture: {e}", file=sys.stderr)
        return 2


def compare(args: argparse.Namespace) -> int:
    import cv2

    from tfface.data.sources import FolderSource
    from tfface.evaluation import eval_batches
    from tfface.rundir import load_run_config

    cfg, gen = load_run_config(args.run)
    if cfg.data.task == "sr":
        print("hole_texture: an inpainting run is needed (SR has no hole)", file=sys.stderr)
        return 2
    cfg.data.data_dir = args.data_dir
    cfg.data.eval_occlusions = {o: 1.0 for o in args.occlusions}
    cfg.data.eval_count = args.images
    batches = eval_batches(cfg, args.images, source=FolderSource(cfg.data, held_out=True))
    kernel = np.ones((5, 5), np.uint8)
    print(f"{args.images} faces of {args.data_dir}, occlusions {', '.join(args.occlusions)}")
    print(f"  {'weights':50s} {'restored':>9s} {'true face':>9s} {'ratio':>6s}")
    for w in args.weights:
        gen.load_weights(w)
        got, true = [], []
        for b in batches:
            pred = gen.predict([b["occluded"], b["mask"]] if len(gen.inputs) == 2
                               else b["occluded"], verbose=0)
            for i in range(len(pred)):
                m = cv2.erode((b["mask"][i, ..., 0] > 0.5).astype(np.uint8), kernel) > 0
                if m.any():
                    got.append(high_pass(pred[i])[m].mean())
                    true.append(high_pass(b["clean"][i])[m].mean())
        print(f"  {w[-50:]:50s} {np.mean(got):9.2f} {np.mean(true):9.2f} "
              f"{np.mean(got) / np.mean(true):6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
