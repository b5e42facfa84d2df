"""Face verification of restored faces (tfface.identity): the pairs protocol and its
thresholds on embeddings whose answer is known, the identities table, the dlib
embedder on a real face (``skimage.data.astronaut()``, public domain) and
``pipelines.evaluate --identity``."""

from __future__ import annotations

import json
import math
import os
import sys

import cv2
import numpy as np
import pytest

from conftest import astronaut_crop
from tfface.identity import verify as ident


def _people(n_people=10, photos=3, dim=16, noise=0.05, seed=0):
    """Well-separated embeddings: ``photos`` noisy copies of each person's own vector."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_people, dim)) * 3
    people = np.repeat(np.arange(n_people), photos)
    gallery = centers[people] + noise * rng.normal(size=(len(people), dim))
    files = [f"p{p}_{i}.jpg" for i, p in enumerate(people)]
    return people, gallery, files


def _verify(variants, people, gallery, files, probes, **kw):
    return ident.verification(
        {k: v for k, v in variants.items()}, people[probes], gallery, people,
        probe_files=[files[i] for i in probes], gallery_files=files, **kw)


def test_threshold_at_fpr_accepts_at_most_the_target_share():
    imp = np.arange(1000.0)
    t = ident.threshold_at_fpr(imp, 0.01)
    assert np.sum(imp >= t) == 10 and 989 < t <= 990  # the 10 highest, no more
    assert np.sum(imp >= ident.threshold_at_fpr(imp, 0.0)) == 0
    # A run of equal scores is never split: the threshold rises above all of it.
    tied = np.r_[np.zeros(95), np.full(5, 7.0)]
    assert np.sum(tied >= ident.threshold_at_fpr(tied, 0.01)) == 0
    assert np.sum(tied >= ident.threshold_at_fpr(tied, 0.05)) == 5


def test_mcnemar_p_is_the_exact_two_sided_binomial_tail():
    assert ident.mcnemar_p(0, 0) == 1.0  # no disagreement, no evidence
    assert ident.mcnemar_p(0, 5) == pytest.approx(2 / 32)
    assert ident.mcnemar_p(9, 1) == ident.mcnemar_p(1, 9) == pytest.approx(2 * 11 / 1024)
    assert ident.mcnemar_p(3, 3) == 1.0  # capped
    assert ident.mcnemar_p(3, 8) == pytest.approx(2 * sum(math.comb(11, i) for i in range(4))
                                                  / 2 ** 11)
    # Thousands of disagreements (a large eval set) neither overflow nor lose the answer.
    assert ident.mcnemar_p(600, 600) == 1.0
    assert 0 < ident.mcnemar_p(900, 1100) < 1e-5


def test_paired_counts_the_genuine_pairs_one_variant_accepts_and_the_other_rejects():
    people, gallery, files = _people()
    probes = np.arange(0, len(people), 3)
    wrong = np.random.default_rng(1).normal(size=(10, gallery.shape[1])) * 3  # nobody
    # "half" is right on the first 6 probes (their 2 pairs each), "other" on the last 3.
    half = np.where(np.arange(10)[:, None] < 6, gallery[probes], wrong)
    other = np.where(np.arange(10)[:, None] >= 7, gallery[probes], wrong)
    r = _verify({"clean": gallery[probes], "half": half, "other": other}, people, gallery,
                files, probes, baseline="other")
    assert set(r["paired"]) == {"half"}  # the reference (clean) is not paired
    p = r["paired"]["half"]
    assert (p["baseline"], p["only_variant"], p["only_baseline"]) == ("other", 12, 6)
    assert p["p_value"] == pytest.approx(ident.mcnemar_p(12, 6))
    # Faces that all look alike pass impostors at the shared threshold; each variant is
    # paired at its own, stricter one: 8 pairs lost there, where the shared one loses 2.
    rng = np.random.default_rng(2)
    alike = (0.2 * gallery[probes] + 0.8 * gallery.mean(0)
             + 0.3 * rng.normal(size=(10, gallery.shape[1])))
    r = _verify({"clean": gallery[probes], "alike": alike}, people, gallery, files, probes,
                baseline="clean")
    v = r["variants"]["alike"]
    assert (v["tpr"], v["tpr_own"]) == (pytest.approx(0.9), pytest.approx(0.6))
    assert (r["paired"]["alike"]["only_variant"], r["paired"]["alike"]["only_baseline"]) == (0, 8)
    assert "paired" not in _verify({"clean": gallery[probes]}, people, gallery, files, probes)
    with pytest.raises(ValueError, match="no 'bicubic' variant"):
        _verify({"clean": gallery[probes]}, people, gallery, files, probes, baseline="bicubic")


def test_separated_people_are_all_verified_and_other_people_rejected():
    people, gallery, files = _people()
    probes = np.arange(0, len(people), 3)  # the first photo of each person
    wrong = gallery[(probes + 3) % len(people)]  # the photo of the next person
    r = _verify({"clean": gallery[probes], "wrong": wrong}, people, gallery, files, probes)
    c, w = r["variants"]["clean"], r["variants"]["wrong"]
    assert c["tpr"] == 1.0 and c["accuracy"] == 1.0 and c["fpr"] <= 0.01
    assert w["tpr"] == 0.0 and w["accuracy"] <= 0.55
    # Pairs: each probe against its 2 other photos; against the 27 photos of the others.
    assert r["genuine_pairs"] == 10 * 2 and r["impostor_pairs"] == 10 * 27
    assert r["probes_with_genuine_pairs"] == 10


def test_identical_embeddings_carry_no_information():
    people, _, files = _people()
    same = np.ones((len(people), 8))
    probes = np.arange(0, len(people), 3)
    r = _verify({"clean": same[probes]}, people, same, files, probes)
    v = r["variants"]["clean"]
    assert v["tpr"] == v["fpr"] and v["accuracy"] == 0.5  # no threshold tells them apart


def test_half_destroyed_probes_halve_tpr_per_group():
    people, gallery, files = _people(photos=2)
    probes = np.arange(0, len(people), 2)  # 10 probes, 1 genuine pair each
    broken = gallery[probes].copy()
    broken[5:] = 1000.0 * np.eye(16)[:5]  # far from every photo: matched by nobody
    groups = ["intact"] * 5 + ["broken"] * 5
    r = _verify({"clean": gallery[probes], "half": broken}, people, gallery, files, probes,
                similarity=ident.negative_distance, groups=groups)
    assert r["variants"]["half"]["tpr"] == 0.5 and r["variants"]["half"]["fpr"] == 0.0
    assert r["by_group"]["intact"]["half"]["tpr"] == 1.0
    assert r["by_group"]["broken"]["half"]["tpr"] == 0.0
    assert r["by_group"]["broken"]["clean"]["tpr"] == 1.0


def test_own_threshold_tpr_is_not_inflated_by_scores_raised_alike():
    # Noisy people: genuine and impostor scores overlap, so the threshold matters.
    people, gallery, files = _people(n_people=30, photos=4, noise=2.5, seed=3)
    probes = np.arange(0, len(people), 4)

    def dot(a, g):
        return a @ g.T

    clean = gallery[probes]
    r = _verify({"clean": clean, "loose": 2.0 * clean}, people, gallery, files, probes,
                similarity=dot)
    c, lo = r["variants"]["clean"], r["variants"]["loose"]
    assert 0.0 < c["tpr"] < 1.0 and c["tpr_own"] == c["tpr"]  # the reference: one threshold
    # Every score doubled: at the shared threshold more impostors and more genuine pairs
    # pass, at its own 1 % point the loose variant is exactly the clean one.
    assert lo["fpr"] > c["fpr"] and lo["tpr"] > c["tpr"]
    assert lo["tpr_own"] == c["tpr_own"]


def test_a_photo_is_never_its_own_genuine_pair():
    people = np.array(["a", "a", "b", "c"])
    gallery = np.eye(4)[[0, 0, 1, 2]]
    files = ["a1", "a2", "b1", "c1"]
    r = _verify({"clean": gallery[[0, 2]]}, people, gallery, files, np.array([0, 2]))
    # a1 pairs with a2 only; b1 has no other photo, so it only gives impostor pairs.
    assert r["genuine_pairs"] == 1 and r["probes_with_genuine_pairs"] == 1
    assert r["impostor_pairs"] == 2 + 3
    with pytest.raises(ValueError, match="no genuine pair"):
        _verify({"clean": gallery[[2, 3]]}, people, gallery, files, np.array([2, 3]))
    with pytest.raises(ValueError, match="'clean' variant"):
        _verify({"other": gallery[[0]]}, people, gallery, files, np.array([0]))


def test_read_identities(tmp_path):
    good = tmp_path / "ids.csv"
    good.write_bytes("\ufefffile,celeba_identity\nx.jpg,7\n\nsub/y.png,8\n./z.jpg,7\n"
                     .encode("utf-8"))
    assert ident.read_identities(good) == {"x.jpg": "7", "sub/y.png": "8", "z.jpg": "7"}
    cases = {
        "missing.csv": None,
        "header.csv": "name,person\nx.jpg,7\n",
        "short.csv": "file,person\nx.jpg,7\ny.jpg\n",
        "twice.csv": "file,person\nx.jpg,7\nx.jpg,8\n",
        "empty.csv": "",
        "rows.csv": "file,person\n",
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(ident.IdentityError) as e:
            ident.read_identities(tmp_path / name)
        msg = str(e.value)
        assert name in msg and "\n" not in msg, msg
    with pytest.raises(ident.IdentityError, match="line 3"):
        ident.read_identities(tmp_path / "short.csv")
    (tmp_path / "latin1.csv").write_bytes(b"file,person\n\xe9.jpg,7\n")
    with pytest.raises(ident.IdentityError, match="UTF-8"):
        ident.read_identities(tmp_path / "latin1.csv")


def test_missing_dlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    with pytest.raises(ident.IdentityError, match=r"pip install 'tfface\[identity\]'"):
        ident.load_embedder("dlib")
    with pytest.raises(ident.IdentityError, match="unknown face embedder"):
        ident.load_embedder("arcface.dat")


def test_dlib_embedder_tells_a_real_face_from_another():
    pytest.importorskip("dlib")
    pytest.importorskip("skimage")
    from tfface.data.sources import render_synthetic_face

    emb = ident.load_embedder("dlib")
    models = ident.packaged_dlib_models()
    import importlib.util

    pkg = importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]
    assert all(os.path.dirname(p) == os.path.join(pkg, "models") for p in models.values())
    faces = np.stack([astronaut_crop(), astronaut_crop(dx=2, dy=2),
                      astronaut_crop(angle=8.0), render_synthetic_face(0, 3, 128)[0]])
    e = emb.embed(faces)
    assert e.shape == (4, 128) and np.isfinite(e).all()
    d = -emb.similarity(e[:1], e)[0]
    assert d[0] < 1e-6
    # dlib calls distances below 0.6 the same person; alignment undoes the turn.
    assert d[1] < 0.2 and d[2] < 0.2, d
    assert d[3] > 0.6 and d[3] > 3 * max(d[1], d[2]), d
    # [-1, 1] floats are the same faces as uint8.
    f = emb.embed(faces[:1].astype(np.float32) / 127.5 - 1.0)
    assert np.allclose(f, e[:1], atol=1e-4)


class _ColourEmbedder(ident.Embedder):
    """A stand-in embedder: a face's mean colour (the folder below paints each person
    in one colour), so the verification of clean faces is perfect."""

    name = "colour"

    def embed(self, faces):
        return ident.as_uint8_faces(faces).reshape(len(faces), -1, 3).mean(1)

    def similarity(self, a, b):
        return ident.negative_distance(a, b)


def _face_folder(root, people=6, photos=2, size=64):
    rng = np.random.default_rng(0)
    os.makedirs(root)
    lines = ["file,person"]
    for p in range(people):
        colour = rng.integers(30, 225, 3)
        for i in range(photos):
            img = np.clip(colour + rng.normal(0, 4, (size, size, 3)), 0, 255).astype(np.uint8)
            name = f"p{p}_{i}.png"
            cv2.imwrite(os.path.join(root, name), img[..., ::-1])
            lines.append(f"{name},person{p}")
    return lines


@pytest.fixture
def untrained_run(tmp_path):
    """A run directory of the tiny V-Net with its initial weights (nothing trained)."""
    from tfface.rundir import load_run_config
    from conftest import tiny_config

    run = tmp_path / "run"
    run.mkdir()
    tiny_config().save(run / "config.json")
    _, gen = load_run_config(str(run))
    gen.save_weights(str(run / "best.weights.h5"))
    return str(run)


def test_evaluate_identity_table(untrained_run, tmp_path, monkeypatch, capsys):
    from pipelines import evaluate as evaluate_cli

    folder = str(tmp_path / "faces")
    lines = _face_folder(folder)
    base = ["--run", untrained_run, "--data-dir", folder, "--whole-folder", "--images", "8",
            "--identity", "dlib", "--out", str(tmp_path / "eval")]
    # No identities file yet: one clear line, before anything is scored.
    assert evaluate_cli.main(base) == 2
    err = capsys.readouterr().err.strip()
    assert "IDENTITIES.csv" in err and "\n" not in err and "Scoring" not in err
    with open(os.path.join(folder, "IDENTITIES.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    monkeypatch.setitem(ident.EMBEDDERS, "dlib", _ColourEmbedder)
    assert evaluate_cli.main(base) == 0
    report = json.load(open(tmp_path / "eval" / "report.json"))["identity"]
    v = report["variants"]
    assert {"clean", "damaged", "opencv_ns", "keras", "keras_composited"} <= set(v)
    assert v["clean"]["tpr"] == 1.0 and v["clean"]["fpr"] == 0.0
    assert report["probes"] == 8 and report["gallery"] == 12
    assert report["genuine_pairs"] == 8  # each probe's one other photo, never itself
    from tfface.data.occlusion import OCCLUSION_IDS

    assert report["by_group"] and set(report["by_group"]) <= set(OCCLUSION_IDS)
    assert sum(g["clean"]["genuine_pairs"] for g in report["by_group"].values()) == 8
    md = open(tmp_path / "eval" / "report.md").read()
    assert "## Face verification against other photos of the person" in md
    assert "| clean | 1.000 |" in md
    # Each restoration paired with the damaged faces, pair by pair (clean is not listed).
    assert set(report["paired"]) == set(v) - {"damaged", "clean"}
    p = report["paired"]["opencv_ns"]
    assert p["baseline"] == "damaged" and p["only_variant"] + p["only_baseline"] <= 8
    for name, q in report["paired"].items():  # the pairs alone account for the TPR gap
        assert q["only_variant"] - q["only_baseline"] == round(
            8 * (v[name]["tpr_own"] - v["damaged"]["tpr_own"]))
    assert (f"| opencv_ns | {p['only_variant']} | {p['only_baseline']} | "
            f"{p['p_value']:.2g} |") in md and "| clean |" not in md.split("Pair by pair")[1]
    out = capsys.readouterr().out
    assert "| opencv_ns |" in out
    # A run whose data is not a folder is refused before scoring.
    assert evaluate_cli.main(["--run", untrained_run, "--identity", "dlib"]) == 2
    assert "--data-dir" in capsys.readouterr().err


def test_eval_faces_map_to_their_files_and_unlisted_ones_are_refused(tmp_path):
    """The glue of IdentityEval.run on hand-made batches: each eval face's ``index``
    names its file in the source's eval split, and the gallery is the whole folder."""
    from tfface.config import resolve

    folder = str(tmp_path / "faces")
    lines = _face_folder(folder, people=3, photos=2)
    cfg = resolve("vnet", "tiny", {"data": {"source": "folder", "data_dir": folder}})

    class Source:  # the eval split, reversed: index i is the (5 - i)-th file
        eval_files = sorted(os.listdir(folder))[::-1]

    faces = np.stack([cv2.imread(os.path.join(folder, f))[..., ::-1] for f in Source.eval_files])
    clean = faces.astype(np.float32) / 127.5 - 1.0
    batch = {"clean": clean[[0, 2]], "occluded": clean[[0, 2]] * 0.0,
             "mask": np.ones((2, 64, 64, 1), np.float32), "index": np.array([0, 2])}
    people = dict(line.split(",") for line in lines[1:])
    run = ident.IdentityEval(_ColourEmbedder(), people, log=lambda msg: None)
    r = run.run(cfg, [batch], {"swap": lambda b: b["clean"][::-1]}, source=Source())
    v = r["variants"]
    assert r["probes"] == 2 and r["gallery"] == 6 and r["genuine_pairs"] == 2
    assert v["clean"]["tpr"] == 1.0 and v["swap"]["tpr"] == 0.0  # faces of the wrong files
    assert v["damaged"]["genuine_similarity"] < v["clean"]["genuine_similarity"]
    with pytest.raises(ident.IdentityError, match="none of the 2 eval faces"):
        ident.IdentityEval(_ColourEmbedder(), {"elsewhere.jpg": "1"}).run(
            cfg, [batch], {}, source=Source())
