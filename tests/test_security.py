"""Files people share never run code, hang a tool or lie their way into a wrong result.

Every test builds the untrusted file it needs (a run directory, a config, a card, an
embedding model, a data folder) in a temporary folder; the models are tiny and
untrained, so the whole module runs in seconds. See docs/security.md.
"""

from __future__ import annotations

import json
import os
import shutil
import signal

import cv2
import numpy as np
import pytest

import tfface  # noqa: F401  (tf_keras before TensorFlow)
import tensorflow as tf

from tfface import keras
from tfface.config import Config, ConfigError, resolve
from tfface.fileio import TMP_MARK

from bounded import run_bounded




def face_png(seed: int, side: int = 48) -> bytes:
    rng = np.random.default_rng(seed)
    img = np.full((side, side, 3), rng.integers(0, 255, 3), np.uint8)
    cv2.circle(img, (side // 2, side // 2), side // 3,
               tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def payload(marker) -> str:
    """An activation "name" that creates ``marker`` when evaluated, then names ReLU (so
    keras-unet-collection would even build a working model from it)."""
    return f"__import__('pathlib').Path({str(marker)!r}).touch() or ReLU"


def tflite_bytes(model) -> bytes:
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A run directory (config.json + best weights) of an untrained tiny V-Net at 32 px."""
    from tfface.models import get_arch

    run_dir = tmp_path_factory.mktemp("good_run")
    cfg = resolve("vnet", "tiny", {"data": {"image_size": 32, "eval_count": 2,
                                            "occlusions": {"boxes": 1.0},
                                            "eval_occlusions": {"boxes": 1.0}},
                                   "train": {"adv_weight": 0.0}})
    cfg.save(run_dir / "config.json")
    keras.utils.set_random_seed(0)
    get_arch("vnet").build_generator(cfg).save_weights(str(run_dir / "best.weights.h5"))
    return str(run_dir)


@pytest.fixture(scope="module")
def conv_tflite(tmp_path_factory):
    """A float .tflite that takes 32 px ``occluded`` images (one conv layer), no card."""
    x = keras.Input((32, 32, 3), name="occluded")
    model = keras.Model(x, keras.layers.Conv2D(3, 3, padding="same", name="restored")(x))
    path = tmp_path_factory.mktemp("tfl") / "model_float.tflite"
    path.write_bytes(tflite_bytes(model))
    return str(path)


def malicious_run(good_run, where, marker) -> str:
    """A copy of ``good_run`` whose config.json carries the code-running activation."""
    bad = os.path.join(where, "shared_run")
    shutil.copytree(good_run, bad)
    cfg = json.load(open(os.path.join(bad, "config.json")))
    cfg["model"]["params"]["activation"] = payload(marker)
    with open(os.path.join(bad, "config.json"), "w") as f:
        json.dump(cfg, f)
    return bad


# ===================================================================== model.params


def test_the_payload_is_live_when_it_reaches_keras_unet_collection(tmp_path):
    """The control: the same string, handed to keras-unet-collection, runs code. The
    tests below prove that no entry point ever hands it over."""
    from keras_unet_collection._model_vnet_2d import vnet_2d_base

    marker = tmp_path / "ran"
    vnet_2d_base(keras.Input((16, 16, 3)), [4, 8], res_num_ini=1, res_num_max=1,
                 activation=payload(marker), pool=False, unpool=False, name="ctl")
    assert marker.exists()


@pytest.mark.parametrize("tool", ["restore", "validate", "convert", "evaluate", "resume"])
def test_a_malicious_config_runs_no_code_in_any_entry_point(tool, good_run, conv_tflite,
                                                            tmp_path, capsys):
    from pipelines import evaluate as evaluate_cli
    from pipelines import restore as restore_cli
    from pipelines import train as train_cli
    from tflite import convert, validate

    marker = tmp_path / "ran"
    bad = malicious_run(good_run, tmp_path, marker)
    photo = tmp_path / "p.png"
    photo.write_bytes(face_png(1))
    out = str(tmp_path / "out")
    argv = {
        "restore": lambda: restore_cli.main([str(photo), "--model", bad, "--out", out]),
        "validate": lambda: validate.main([conv_tflite, "--run", bad, "--out-dir", out]),
        "convert": lambda: convert.main(["--float", "--run", bad, "--out-dir", out]),
        "evaluate": lambda: evaluate_cli.main(["--run", bad, "--out", out]),
        "resume": lambda: train_cli.main(["--resume", bad, "--quiet"]),
    }[tool]
    assert argv() == 2
    err = capsys.readouterr().err
    cfg_path = os.path.join(bad, "config.json")
    assert err.startswith(f"error: {cfg_path}"), err  # one line that names the file
    assert "model.params.activation of vnet must be one of 'ReLU', 'ReLU6'" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not marker.exists()
    assert not os.path.exists(out)  # nothing written either


def test_set_refuses_the_payload_and_unknown_params(tmp_path, capsys):
    from pipelines import train as train_cli

    marker = tmp_path / "ran"
    run_dir = tmp_path / "run"
    for flags, expected in [
        (["--set", f"model.params.activation={payload(marker)}"],
         "model.params.activation of vnet must be one of"),
        (["--set", "model.params.activaton=ReLU"],
         "unknown key model.params.activaton for vnet (valid: activation, batch_norm,"),
        (["--set", "model.params.filter_num=[8, 16, 100000]"],
         "model.params.filter_num of vnet must be a list of 2 to 8 integers in [1, 2048]"),
    ]:
        assert train_cli.main(["--preset", "tiny", *flags, "--run-dir", str(run_dir),
                               "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err, err
    assert not marker.exists() and not run_dir.exists()


def test_every_family_parameter_has_a_spec_and_refuses_wrong_values():
    from tfface.models import ARCHS, get_arch
    from tfface.models.params import SPECS, check_params

    bad_values = {"int": ["8", 2.5, True, 10**9, -1], "float": ["0.5", float("inf"), -1.0],
                  "bool": ["true", 1], "choice": ["lambda: 0", 3, None],
                  "ints": ["[8]", [8, "16"], [10**9, 8], list(range(30))]}
    for arch in ARCHS:
        family = get_arch(arch)
        assert set(SPECS[arch]) == set(family.default_params), arch  # no key unchecked
        for preset in family.presets:  # every shipped preset passes its own checks
            resolve(arch, preset)
        for key, spec in SPECS[arch].items():
            for value in bad_values[spec.kind]:
                if value is None and spec.nullable:
                    continue
                with pytest.raises(ValueError, match=rf"model\.params\.{key} of {arch} must be"):
                    check_params(arch, {key: value})
        with pytest.raises(ValueError, match=rf"unknown key model\.params\.evil for {arch}"):
            check_params(arch, {"evil": 1})


def test_a_damaged_or_hostile_config_file_is_one_line_naming_it(good_run, tmp_path, capsys):
    from pipelines import evaluate as evaluate_cli

    cases = {
        "not JSON": (b'{"data": {"image_size": 32', "not valid JSON"),
        "not UTF-8": (b"\xff\xfe\x00junk", "not UTF-8 text"),
        "NaN": (b'{"train": {"g_lr": NaN}}', "non-finite number NaN"),
        "deep": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        "huge": (b" " * 1_100_000 + b"{}", "larger than 1000 kB"),
        "list": (b"[1, 2]", "must be a JSON object"),
    }
    for name, (content, expected) in cases.items():
        run = tmp_path / name.replace(" ", "_")
        shutil.copytree(good_run, run)
        (run / "config.json").write_bytes(content)
        assert evaluate_cli.main(["--run", str(run)]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith(f"error: {run / 'config.json'} ") and expected in err, (name, err)
        assert len(err.strip().splitlines()) == 1


def test_absurd_config_values_are_refused_up_front_naming_the_key(capsys):
    from pipelines import train as train_cli

    for over, expected in [
        ({"train": {"g_lr": float("inf")}}, "train.g_lr must be a finite number, got inf"),
        ({"train": {"d_lr": float("nan")}}, "train.d_lr must be a number > 0, got nan"),
        ({"train": {"g_lr": 1e9}}, "train.g_lr must be between 0 and 1, got 1000000000.0"),
        ({"data": {"eval_count": 10**8}}, "data.eval_count must be between 1 and 100000"),
        ({"train": {"batch_size": 10**7}}, "train.batch_size must be between 1 and 4096"),
        ({"data": {"image_size": 65536}}, "data.image_size must be between 16 and 2048"),
        ({"data": {"occlusions": {"boxes": float("inf")}}}, "data.occlusions must map"),
        ({"data": {"tfds_name": "hf:evil/net"}}, "data.tfds_name must be a TFDS dataset name"),
    ]:
        with pytest.raises(ConfigError, match="^" + expected.replace(".", r"\.")
                           .replace("(", r"\(").replace(")", r"\)")):
            resolve("vnet", "tiny", over)
    # The same from the command line (JSON's Infinity parses to a float).
    assert train_cli.main(["--preset", "tiny", "--set", "train.g_lr=Infinity",
                           "--run-dir", "/nonexistent/never-made"]) == 2
    assert "train.g_lr must be a finite number" in capsys.readouterr().err


# ===================================================================== embeddings


def test_a_malicious_embedding_h5_is_never_loaded(good_run, tmp_path, capsys):
    from pipelines import evaluate as evaluate_cli
    from tfface.identity.verify import load_embedder

    marker = tmp_path / "ran"
    path = str(marker)

    def evil(x):
        __import__("pathlib").Path(path).touch()
        return x

    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, keras.layers.Dense(4)(
        keras.layers.GlobalAveragePooling2D()(keras.layers.Lambda(evil)(inp))))
    h5 = str(tmp_path / "arcface.h5")
    model.save(h5)
    marker.unlink()  # building and saving called the Lambda
    # The control: loading the file the usual way runs its code (safe_mode does not
    # cover legacy .h5 files).
    keras.models.load_model(h5, compile=False, safe_mode=True)
    assert marker.exists()  # the load alone ran it
    marker.unlink()

    out = tmp_path / "eval"
    assert evaluate_cli.main(["--run", good_run, "--embedding", h5, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --embedding: ") and len(err.strip().splitlines()) == 1
    assert "face-embedding models are accepted as .tflite files only" in err, err
    assert not marker.exists() and not out.exists()  # refused before anything was scored
    keras_file = str(tmp_path / "arcface.keras")
    shutil.copy(h5, keras_file)
    for f in (keras_file, str(tmp_path), str(tmp_path / "arcface.tflite.h5")):
        with pytest.raises(ValueError, match="accepted as .tflite files only"):
            load_embedder(f)
    assert not marker.exists()


def test_an_embedding_tflite_must_be_an_embedding_model_with_a_valid_card(tmp_path):
    from tfface.identity.verify import load_embedder

    inp = keras.Input((16, 16, 3))
    emb = tmp_path / "emb.tflite"
    emb.write_bytes(tflite_bytes(keras.Model(inp, keras.layers.Dense(4)(
        keras.layers.GlobalAveragePooling2D()(inp)))))
    vec = load_embedder(str(emb)).embed(np.zeros((2, 32, 32, 3), np.float32))
    assert vec.shape == (2, 4)
    (tmp_path / "emb.json").write_text('{"input_range": [0, "__import__"]}')
    with pytest.raises(ValueError, match="emb.json: expected a JSON object"):
        load_embedder(str(emb))
    image = tmp_path / "image.tflite"
    image.write_bytes(tflite_bytes(keras.Model(inp, keras.layers.Conv2D(3, 1)(inp))))
    with pytest.raises(ValueError, match="is not a face-embedding model"):
        load_embedder(str(image))


# ===================================================================== cards


def _with_card(content: bytes, card: dict, path, sidecar: bool = True) -> str:
    from tfface.cards import embed_card

    path = str(path)
    with open(path, "wb") as f:
        f.write(embed_card(content, card))
    if sidecar:
        with open(os.path.splitext(path)[0] + ".json", "w") as f:
            json.dump(card, f)
    return path


def _inpaint_card(**extra) -> dict:
    return {"task": "inpaint", "outputs": [{"name": "restored", "shape": [1, 32, 32, 3]}],
            "inputs": [{"name": "occluded", "shape": [1, 32, 32, 3]}], **extra}


def test_a_card_pointing_at_a_malicious_run_is_never_followed(good_run, conv_tflite, tmp_path,
                                                             monkeypatch, capsys):
    from pipelines import restore as restore_cli
    from tflite import validate

    marker = tmp_path / "ran"
    bad = malicious_run(good_run, tmp_path, marker)
    tfl = _with_card(open(conv_tflite, "rb").read(), _inpaint_card(source_run=bad),
                     tmp_path / "model_float.tflite")
    opened = []
    real = Config.load.__func__
    monkeypatch.setattr(Config, "load", classmethod(
        lambda cls, p: (opened.append(str(p)), real(cls, p))[1]))
    out = tmp_path / "report"
    assert validate.main([tfl, "--out-dir", str(out), "--latency-runs", "1", "--threads",
                          "2"]) == 0
    report = json.load(open(out / "validation.json"))[0]
    assert "fidelity" not in report and "quality" not in report
    assert "is not opened unless you pass it with --run" in report["note"]
    photo = tmp_path / "p.png"
    photo.write_bytes(face_png(2))
    assert restore_cli.main([str(photo), "--model", tfl, "--out", str(tmp_path / "r"),
                             "--quiet"]) == 0
    assert (tmp_path / "r" / "p_png.png").exists()
    assert opened == [] and not marker.exists()
    capsys.readouterr()


@pytest.fixture(scope="module")
def sr_x4_bytes():
    """A x4 super-resolution .tflite (8 -> 32 px, nearest upsampling), no card."""
    lr = keras.Input((8, 8, 3), name="lr")
    return tflite_bytes(keras.Model(lr, keras.layers.UpSampling2D(4, name="restored")(lr)))


@pytest.mark.parametrize("card, expected", [
    ({"task": "sr", "scale": 1000}, "scale 1000 is not an integer between 1 and 16"),
    ({"task": "sr", "scale": "four"}, "scale 'four' is not an integer"),
    ({"task": "sr", "scale": float("inf")}, "scale inf is not an integer"),
    ({"task": "sr", "scale": 2}, "the file maps 8 px to 32 px, but the card says x2"),
    ({"task": "sr", "scale": 4, "outputs": [{"shape": [1, 10**9, 10**9, 3]}]},
     "the card's output shape [1, 1000000000, 1000000000, 3] is not the file's [1, 32, 32, 3]"),
    ({"task": "__import__('os')", "scale": 4}, "is neither 'inpaint' nor 'sr'"),
])
def test_a_card_that_lies_is_a_clear_error(card, expected, sr_x4_bytes, tmp_path, capsys):
    from pipelines import restore as restore_cli

    full = {"outputs": [{"name": "restored", "shape": [1, 32, 32, 3]}], **card}
    tfl = _with_card(sr_x4_bytes, full, tmp_path / "model_sr.tflite")
    photo = tmp_path / "p.png"
    photo.write_bytes(face_png(3, 40))
    out = tmp_path / "out"
    assert restore_cli.main([str(photo), "--model", tfl, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "does not describe the file" in err and expected in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_conversion_killed_between_model_and_card_never_pairs_them_wrong(conv_tflite,
                                                                           tmp_path, caplog):
    from tfface.export.convert import write_model_and_card
    from tfface.cards import embed_card, load_card

    base = open(conv_tflite, "rb").read()
    path, card_path = str(tmp_path / "model_float.tflite"), str(tmp_path / "model_float.json")
    old, new = _inpaint_card(version="old"), _inpaint_card(version="new")
    write_model_and_card(path, card_path, embed_card(base, old), old)
    old_bytes = open(path, "rb").read()
    assert load_card(path)["version"] == "old"

    def killed_conversion(after_renames: int) -> None:
        """A child process that writes the new pair and is SIGKILLed after the given
        number of renames (0: both files written under temporary names, none renamed)."""
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            try:
                real, calls = os.replace, []

                def replace(a, b):
                    if len(calls) == after_renames:
                        os.kill(os.getpid(), signal.SIGKILL)
                    calls.append(b)
                    real(a, b)

                os.replace = replace
                write_model_and_card(path, card_path, embed_card(base, new), new)
            finally:
                os.kill(os.getpid(), signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

    killed_conversion(0)  # killed before any rename: the old pair, intact
    assert open(path, "rb").read() == old_bytes and load_card(path)["version"] == "old"
    killed_conversion(1)  # the new card is in place, the model is still the old one
    assert json.load(open(card_path))["version"] == "new"
    assert open(path, "rb").read() == old_bytes
    with caplog.at_level("WARNING"):
        assert load_card(path)["version"] == "old"  # the card inside the file wins
    assert "does not belong to" in caplog.text
    assert [f for f in os.listdir(tmp_path) if TMP_MARK in f]  # what the kills left
    # The next conversion removes the leftovers and writes a matching pair.
    write_model_and_card(path, card_path, embed_card(base, new), new)
    assert load_card(path)["version"] == "new"
    assert not [f for f in os.listdir(tmp_path) if TMP_MARK in f]


def test_validating_a_classifier_says_it_is_not_an_image_to_image_model(tmp_path, capsys):
    from pipelines import restore as restore_cli
    from tflite import validate

    inp = keras.Input((32, 32, 3), name="image")
    clf = keras.Model(inp, keras.layers.Dense(5, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))))
    tfl = _with_card(tflite_bytes(clf), _inpaint_card(), tmp_path / "classifier.tflite")
    out = tmp_path / "report"
    assert validate.main([tfl, "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "it is not an image-to-image model: it takes ?x32x32x3 and returns ?x5" in err, err
    assert not out.exists()
    photo = tmp_path / "p.png"
    photo.write_bytes(face_png(4))
    assert restore_cli.main([str(photo), "--model", tfl, "--out", str(tmp_path / "r")]) == 2
    assert "not an image-to-image model" in capsys.readouterr().err


# ===================================================================== hangs and names


def _folder_with_odd_entries(root) -> None:
    root.mkdir()
    for i in range(3):
        (root / f"face{i}.png").write_bytes(face_png(10 + i))
    os.mkfifo(root / "pipe.jpg")
    os.symlink(root / "pipe.jpg", root / "link_to_pipe.png")
    fd = os.open(os.path.join(os.fsencode(root), b"caf\xe9.png"), os.O_WRONLY | os.O_CREAT)
    os.write(fd, face_png(20))
    os.close(fd)


def test_fifos_and_non_utf8_names_in_a_data_folder_are_skipped_and_counted(tmp_path, caplog):
    from tfface.config import DataConfig
    from tfface.data.sources import FolderSource

    root = tmp_path / "faces"
    _folder_with_odd_entries(root)
    run_dir = tmp_path / "run"
    cfg = DataConfig(source="folder", data_dir=str(root), image_size=32, eval_count=1)
    with caplog.at_level("WARNING", logger="tfface.data.sources"):
        src = run_bounded(lambda: FolderSource(cfg, log_dir=str(run_dir)))
    assert src.scan.counts() == {"not-a-file": 2, "bad-name": 1}
    assert sorted(src.scan.usable) == ["face0.png", "face1.png", "face2.png"]
    assert "2 not a regular file" in caplog.text and "1 name not valid UTF-8" in caplog.text
    log = (run_dir / "folder_scan.log").read_text(encoding="utf-8")
    assert "pipe.jpg\ta named pipe (FIFO), not a regular file" in log
    assert "caf\\xe9.png" in log
    batch = run_bounded(lambda: next(iter(src.dataset("train").take(2))))
    assert batch["image"].shape == (32, 32, 3)
    # A file that becomes a pipe after the scan is refused at read time, never waited on.
    os.remove(root / "face0.png")
    os.mkfifo(root / "face0.png")
    img, ok = run_bounded(lambda: src._decode_np(str(root / "face0.png").encode(), np.int64(0)))
    assert not ok


def test_fifos_and_non_utf8_names_in_a_restore_folder_are_skipped(good_run, tmp_path, capsys):
    from pipelines import restore as restore_cli

    root = tmp_path / "photos"
    _folder_with_odd_entries(root)
    out = tmp_path / "out"
    code = run_bounded(lambda: restore_cli.main([str(root), "--model", good_run, "--out",
                                                 str(out), "--quiet"]))
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert sorted(os.listdir(out)) == ["face0_png.png", "face1_png.png", "face2_png.png"]
    assert "skipped 3 image file(s)" in printed.err
    assert "pipe.jpg: a named pipe (FIFO), not a regular file" in printed.err
    assert "caf\\xe9.png: file name is not valid UTF-8" in printed.err


def test_a_config_json_that_is_a_pipe_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "config.json")
    with pytest.raises(ConfigError, match="config.json: a named pipe \\(FIFO\\), not a regular"):
        run_bounded(lambda: Config.load(tmp_path / "config.json"))
    with pytest.raises(FileNotFoundError):  # a missing file keeps its familiar error
        Config.load(tmp_path / "missing.json")


def test_a_fifo_in_a_mask_folder_is_refused_without_blocking(tmp_path):
    from tfface.data.occlusion import load_mask_bank

    (tmp_path / "a.png").write_bytes(cv2.imencode(".png", np.full((16, 16), 255, np.uint8))[1])
    os.mkfifo(tmp_path / "b.png")
    with pytest.raises(ValueError, match=r"'b.png' is unusable \(a named pipe \(FIFO\)"):
        run_bounded(lambda: load_mask_bank(str(tmp_path), 16))


def test_a_samples_manifest_may_only_name_files_in_its_folder(tmp_path):
    from tfface.export.validate import check_samples

    for name in ("/etc/passwd", "../outside.tflite"):
        (tmp_path / "m_samples.json").write_text(json.dumps({"model": name, "card": "m.json",
                                                             "samples": []}))
        with pytest.raises(ValueError, match="may only name files inside"):
            check_samples(str(tmp_path / "m_samples.json"))
