"""Distill dlib's face descriptor into a Keras student, the identity loss of training.

Two steps (see tfface.identity.student)::

    # 1. faces of the training folder, damaged and restored by a run, with dlib's descriptors
    python -m pipelines.identity_student describe --run android_demo_assets/vnet/keras \\
        --data-dir ../shared/data/faces-train --faces 6000 --out runs/id-faces.npz
    # 2. fit the student to them
    python -m pipelines.identity_student train --faces-file runs/id-faces.npz \\
        --out runs/id-student --epochs 12

then train with ``--set train.identity_weight=0.5 --set train.identity_student=runs/id-student``.
``describe`` needs the ``identity`` extra (dlib): ``pip install 'tfface[identity]'``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import tfface  # noqa: F401
from tfface.cli import prog_name


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("pipelines.identity_student"),
        description="Distill dlib's face descriptor into a small Keras network whose "
        "descriptor distance is a training loss (train.identity_weight).")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("describe", help="faces of a training folder (clean, damaged by the "
                       "run's occlusion mixture, restored by the run) with dlib's descriptors")
    d.add_argument("--run", required=True, help="run directory whose config chooses the "
                   "faces and damage and whose model restores them")
    d.add_argument("--data-dir", help="training folder (default: the run's data.data_dir)")
    d.add_argument("--faces", type=int, default=6000, help="training faces to describe "
                   "(each gives three images: clean, damaged, restored)")
    d.add_argument("--start-batch", type=int, default=0, help="skip this many batches of "
                   "the training stream (to split the work over processes)")
    d.add_argument("--batch-size", type=int, default=32)
    d.add_argument("--out", required=True, help="an .npz file to write (refused if it exists)")
    c = sub.add_parser("check", help="how well a student stands in for dlib on a folder "
                       "of other people (its IDENTITIES.csv): verification TPR at 1 %% FPR "
                       "of both on the clean photos, and the student's distance to dlib")
    c.add_argument("--student", required=True, help="folder made by train")
    c.add_argument("--data-dir", required=True, help="folder of photos with IDENTITIES.csv")
    c.add_argument("--image-size", type=int, default=128)
    t = sub.add_parser("train", help="fit a student to described faces")
    t.add_argument("--faces-file", nargs="+", required=True, help=".npz files of describe")
    t.add_argument("--out", required=True, help="folder for student.weights.h5 and "
                   "student.json (refused if it holds a student)")
    t.add_argument("--epochs", type=int, default=12)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--work-size", type=int, default=96, help="side the crop is resized to "
                   "inside the student (cost grows with its square)")
    t.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256])
    t.add_argument("--max-minutes", type=float, help="stop after the epoch that passes this")
    t.add_argument("--seed", type=int, default=0)
    return p


def _describe(args) -> int:
    import tensorflow as tf
    from tqdm.auto import tqdm

    from tfface.data.pipeline import make_dataset
    from tfface.identity.verify import load_embedder
    from tfface.identity.student import describe
    from tfface.rundir import generator_inputs, load_generator

    if os.path.exists(args.out):
        print(f"error: {args.out} exists; choose another --out (nothing was overwritten)",
              file=sys.stderr)
        return 2
    if args.faces < 1:
        print("error: --faces must be at least 1", file=sys.stderr)
        return 2
    cfg, gen = load_generator(args.run)
    if cfg.data.task != "inpaint":
        print(f"error: {args.run} is a {cfg.data.task} run; describe needs an inpainting run",
              file=sys.stderr)
        return 2
    if args.data_dir:
        cfg.data.source, cfg.data.data_dir = "folder", args.data_dir
    embedder = load_embedder("dlib")
    keys = generator_inputs(cfg)
    ds = make_dataset(cfg, "train", batch_size=args.batch_size, start_step=args.start_batch)

    def restore(batch):
        xs = [tf.convert_to_tensor(batch[k]) for k in keys]
        return gen(xs[0] if len(xs) == 1 else xs, training=False).numpy()

    batches = ({k: v.numpy() for k, v in b.items()} for b in ds)
    with tqdm(total=args.faces, unit="face", desc="describing") as bar:
        data = describe(batches, restore, embedder, args.faces, progress=bar.update)
    tmp = args.out + ".partial.npz"
    np.savez(tmp, **data)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(data['images'])} images of {args.faces} faces")
    return 0


def _train(args) -> int:
    from tfface.identity.student import (STUDENT_WEIGHTS, StudentSpec, save_student,
                                         train_student)

    if os.path.exists(os.path.join(args.out, STUDENT_WEIGHTS)):
        print(f"error: {args.out} already holds a student; choose another --out",
              file=sys.stderr)
        return 2
    parts = []
    for path in args.faces_file:
        with np.load(path, allow_pickle=False) as z:
            parts.append({k: z[k] for k in ("images", "descriptors", "kind", "face")})
    offset, data = 0, {k: [] for k in parts[0]}
    for part in parts:  # face ids of different files must not collide
        for k in data:
            data[k].append(part[k] + offset if k == "face" else part[k])
        offset += int(part["face"].max()) + 1
    data = {k: np.concatenate(v) for k, v in data.items()}
    size = int(data["images"].shape[1])
    spec = StudentSpec(image_size=size, work_size=args.work_size, widths=list(args.widths))
    model, facts = train_student(data, spec, epochs=args.epochs, batch_size=args.batch_size,
                                 lr=args.lr, seed=args.seed, max_minutes=args.max_minutes)
    facts["faces_files"] = [os.path.basename(f) for f in args.faces_file]
    save_student(model, spec, args.out, facts)
    print(f"wrote {args.out}: held-out distance to dlib {facts['val_distance']:.4f} "
          f"after {facts['epochs_run']} epochs ({facts['minutes']:.1f} min)")
    return 0


def _check(args) -> int:
    from tfface.config import DataConfig
    from tfface.identity.verify import (IDENTITIES_FILE, folder_faces, load_embedder,
                                 negative_distance, read_identities, verification)
    from tqdm.auto import tqdm

    from tfface.identity.student import SAME_PERSON_DISTANCE, load_student

    student = load_student(args.student)
    people = read_identities(os.path.join(args.data_dir, IDENTITIES_FILE))
    d = DataConfig(source="folder", data_dir=args.data_dir, image_size=args.image_size,
                   face_framing="template")
    files, faces = folder_faces(d)
    keep = [i for i, f in enumerate(files) if f in people]
    files, faces = [files[i] for i in keep], faces[keep]
    who = [people[f] for f in files]
    print(f"{len(files)} photos of {len(set(who))} people; embedding with dlib and the student")
    dlib = load_embedder("dlib")
    dlib_parts, stud_parts = [], []
    with tqdm(total=len(faces), unit="face", desc="embedding") as bar:
        for i in range(0, len(faces), 128):
            chunk = faces[i:i + 128]
            dlib_parts.append(dlib.embed(chunk))
            stud_parts.append(student(chunk.astype(np.float32) / 127.5 - 1, training=False).numpy())
            bar.update(len(chunk))
    dlib_e, stud_e = np.concatenate(dlib_parts), np.concatenate(stud_parts)
    for name, e in (("dlib", dlib_e), ("student", stud_e)):
        r = verification({"clean": e}, who, e, who, probe_files=files, gallery_files=files,
                         similarity=negative_distance)
        v = r["variants"]["clean"]
        print(f"{name:8s} TPR @ 1% FPR {v['tpr']:.3f}, accuracy {v['accuracy']:.3f} "
              f"({r['genuine_pairs']} genuine, {r['impostor_pairs']} impostor pairs)")
    dist = np.linalg.norm(stud_e - dlib_e, axis=1)
    print(f"student to dlib: mean distance {dist.mean():.3f} (median {np.median(dist):.3f}; "
          f"dlib calls < {SAME_PERSON_DISTANCE} the same person)")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return {"describe": _describe, "train": _train, "check": _check}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
