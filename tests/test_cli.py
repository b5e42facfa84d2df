"""The command lines: the train CLI (help, flags → config, errors, end-to-end tiny run with
export), every console script's usage name, and the README's commands and links."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipelines import train as train_cli


def test_help_explains_every_option():
    help_text = train_cli.build_parser().format_help()
    for flag in ("--arch", "--preset", "--data-dir", "--tfds", "--tfds-data-dir", "--epochs",
                 "--steps-per-epoch", "--batch-size", "--adv-weight", "--run-dir", "--resume",
                 "--set", "--export", "--max-minutes", "--mask-dir", "--facemask-dir",
                 "--data-service", "--pretrain-steps", "--strategy"):
        assert flag in help_text
    assert "demo" in help_text and "tiny" in help_text


def test_flags_become_the_config():
    args = train_cli.build_parser().parse_args(
        ["--arch", "vnet", "--preset", "tiny", "--data-dir", "/faces", "--batch-size", "2",
         "--adv-weight", "0", "--set", "train.g_lr=0.002", "--set", "data.eval_count=3"])
    cfg = train_cli.config_from_args(args)
    assert cfg.data.source == "folder" and cfg.data.data_dir == "/faces"
    assert cfg.train.batch_size == 2 and cfg.train.adv_weight == 0
    assert cfg.train.g_lr == 0.002 and cfg.data.eval_count == 3
    assert cfg.data.image_size == 64


def test_default_is_the_published_configuration():
    cfg = train_cli.config_from_args(train_cli.build_parser().parse_args([]))
    assert cfg.model.arch == "vnet" and cfg.model.preset == "paper"
    assert cfg.data.image_size == 256 and cfg.data.source == "synthetic"
    assert cfg.model.params["filter_num"] == [64, 128, 256, 512, 512]
    assert (cfg.train.batch_size, cfg.train.epochs) == (32, 20)
    assert (cfg.train.g_lr, cfg.train.d_lr, cfg.train.beta_1) == (1e-4, 2.5e-4, 0.5)
    assert (cfg.train.adv_weight, cfg.train.pixel_weight, cfg.train.pixel_loss) == (1, 100, "mse")


@pytest.mark.parametrize("argv, message", [
    (["--set", "train.nope=1"], "unknown config key 'train.nope'"),
    (["--set", "train.batch_size"], "KEY=VALUE"),
    (["--data-dir", "x", "--tfds", "celeb_a"], "either --data-dir or --tfds"),
    (["--preset", "tiny", "--set", "train.pixel_loss=l3"], "pixel_loss"),
    (["--preset", "tiny", "--mask-dir", "/no/such/folder"], "--mask-dir: no such folder"),
])
def test_bad_values_are_clear_errors(argv, message, capsys, tmp_path):
    assert train_cli.main(argv + ["--run-dir", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err


def test_empty_data_dir_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "faces").mkdir()
    code = train_cli.main(["--preset", "tiny", "--data-dir", str(tmp_path / "faces"),
                           "--run-dir", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "faces" in err and "Traceback" not in err


def test_tiny_run_end_to_end_in_a_subprocess(tmp_path):
    """The README's main job, shrunk (the demo recipe: mask input, HoleFill residual, L1,
    on the tiny V-Net): train, show the baselines and the verdict, export int8 with the
    fill kept float, print where things are."""
    import json

    run_dir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.train", "--arch", "vnet", "--preset", "tiny",
         "--run-dir", str(run_dir), "--export", "int8", "--quiet", "--adv-weight", "0",
         "--set", "model.params.mask_input=true", "--set", "model.params.prefill=true",
         "--set", "train.pixel_loss=l1",
         # one occlusion: tracing the default mixture costs ~13 s per dataset built (train,
         # eval, calibration), and the mixture is covered by test_occlusion/test_pipeline
         "--set", 'data.occlusions={"boxes": 1}', "--set", 'data.eval_occlusions={"boxes": 1}'],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SYNTHETIC" in proc.stdout + proc.stderr
    summary = json.load(open(run_dir / "summary.json"))
    ns = summary["baselines"]["opencv_ns"]
    assert f"OpenCV Navier-Stokes (true mask): PSNR {ns['psnr']:.2f} dB" in proc.stdout
    assert "Verdict: the model (" in proc.stdout and summary["verdict"] in proc.stdout
    # The classical fill alone already beats the damaged input by far.
    assert summary["best_val_psnr"] > summary["baselines"]["input"]["psnr"] + 3
    assert str(run_dir / "model_int8_mixed.tflite") in proc.stdout
    card = json.load(open(run_dir / "model_int8_mixed.json"))
    assert card["quantization"]["float_layers"] == ["hole_fill"]
    assert card["fidelity"]["psnr_db_vs_keras"] > 40
    assert (run_dir / "samples" / "epoch_0002.png").exists()


XLA_MESSAGE = """Graph execution error:

Detected at node gradient_tape/up2/resize/ResizeNearestNeighborGrad defined at (most recent call last):
<stack traces unavailable>
Detected unsupported operations when trying to compile graph __inference__train_step_20827[] on XLA_CPU_JIT: ResizeNearestNeighborGrad (No registered 'ResizeNearestNeighborGrad' OpKernel for XLA_CPU_JIT devices compatible with node {{node gradient_tape/up2/resize/ResizeNearestNeighborGrad}}){{node gradient_tape/up2/resize/ResizeNearestNeighborGrad}}
The op is created at:
File "/work/main/tfface/train/trainer.py", line 287, in _gradients
\ttf2xla conversion failed while converting __inference__train_step_20827[]. Run with TF_DUMP_GRAPH_PREFIX=/path/to/dump/dir and --vmodule=xla_compiler=2 to obtain a dump of the compiled functions.
\t [[StatefulPartitionedCall]] [Op:__inference_train_function_21594]"""


@pytest.mark.parametrize("message, summary", [
    # The cause of a graph error is below its boilerplate (the real text of an XLA failure).
    (XLA_MESSAGE, "Detected unsupported operations when trying to compile graph "
                  "__inference__train_step_20827[] on XLA_CPU_JIT: ResizeNearestNeighborGrad (No "
                  "registered 'ResizeNearestNeighborGrad' OpKernel for XLA_CPU_JIT devices) — an "
                  "op of this model has no XLA kernel: train without --jit-compile"),
    # A Python error raised in the input pipeline keeps its own words.
    ("Graph execution error:\n\nSourceError: faces/a.png became unreadable\n\t [[{{node PyFunc}}]]",
     "faces/a.png became unreadable"),
    ("plain message", "plain message"),
])
def test_runtime_errors_are_summarized_by_their_cause(message, summary):
    import tensorflow as tf

    assert train_cli.op_error_summary(tf.errors.InternalError(None, None, message)) == summary


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _console_scripts() -> dict[str, str]:
    """``{script: module}`` of pyproject.toml's [project.scripts]."""
    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    return {name: target.split(":")[0] for name, target in scripts.items()}


def test_every_console_script_names_itself_in_its_usage_line(monkeypatch):
    """--help says `usage: tfface-restore` when started as the console script and
    `usage: python -m pipelines.restore` when started as the module, for all ten."""
    import importlib

    scripts = _console_scripts()
    assert len(scripts) == 10 and "tfface-prepare" in scripts and "tfface-grow" in scripts
    for script, module in scripts.items():
        parser_of = importlib.import_module(module).build_parser
        monkeypatch.setattr(sys, "argv", [os.path.join("/venv", "bin", script)])
        assert parser_of().format_usage().startswith(f"usage: {script} "), script
        # python -m puts the module's file in argv[0]
        monkeypatch.setattr(sys, "argv", [os.path.join(ROOT, *module.split(".")) + ".py"])
        assert parser_of().format_usage().startswith(f"usage: python -m {module} "), module


def test_the_installed_console_script_says_its_own_name():
    script = os.path.join(os.path.dirname(sys.executable), "tfface-restore")
    if not os.path.exists(script):
        pytest.skip(f"{script} is not installed (pip install -e .)")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage: tfface-restore "), proc.stdout[:200]


def test_the_readme_lists_every_console_script_with_its_module():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    for script, module in _console_scripts().items():
        assert f"| `{script}` | `{module}` |" in readme, script


def test_the_readme_restores_with_files_that_exist_or_that_the_main_job_writes():
    """Shipped files named in the README exist; a restore from runs/demo names the file
    the main job (`--export int8` of the demo V-Net, tested above) writes."""
    import re

    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    shipped = set(re.findall(r"android_demo_assets/[\w/.-]+\.tflite", readme))
    assert "android_demo_assets/vnet/model_int8_mixed.tflite" in shipped
    for path in shipped:
        assert os.path.isfile(os.path.join(ROOT, path)), path
    from_runs = re.findall(r"--model (runs/demo/\S+)", readme)
    assert from_runs and set(from_runs) == {"runs/demo/model_int8_mixed.tflite"}, from_runs
    assert "--run-dir runs/demo --export int8" in readme


def test_every_relative_link_in_the_readme_and_docs_resolves():
    """A moved or renamed page leaves no dead link: every relative target of a markdown
    link in README.md, docs/*.md and android_demo_assets/README.md is a file."""
    import glob
    import re

    pages = [os.path.join(ROOT, "README.md"),
             os.path.join(ROOT, "android_demo_assets", "README.md"),
             *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
    dead = []
    for page in pages:
        text = open(page, encoding="utf-8").read()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            path = target.split("#")[0]
            if not path or re.match(r"[a-z]+:", path):  # an anchor, or http:, mailto: ...
                continue
            if not os.path.exists(os.path.join(os.path.dirname(page), path)):
                dead.append(f"{os.path.relpath(page, ROOT)}: {target}")
    assert not dead, dead
    assert not os.path.exists(os.path.join(ROOT, "docs", "architectures.md"))
