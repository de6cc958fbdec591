"""`python -m cnnlib summary ...`: run for real as a subprocess, and in-process for the options.

Each subprocess imports torch (a few seconds on a shared machine), so the subprocess tests are
few and marked slow; the in-process tests call the same `main(argv)` the dispatcher calls.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlib.torch import models

ROOT = Path(__file__).resolve().parent.parent

# cnnlib.torch star-imports summary(), which shadows the submodule's name as an attribute of
# the package: fetch the module itself, as cnnlib/__main__.py does.
summary_module = importlib.import_module("cnnlib.torch.summary")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnlib", "summary", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_alexnet_prints_the_lecture_table():
    result = run_cli("alexnet")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "alexnet on 3x227x227"  # the table's input size by default
    conv1 = next(line for line in lines if line.startswith("features.conv1 (Conv2d)"))
    assert conv1.split()[-4:] == ["64x56x56", "784.0", "23,296", "72.9"]
    assert any(line.startswith("classifier.fc8 (Linear)") for line in lines)
    assert "parameters:     61,100,840" in result.stdout
    assert result.stderr == ""


@pytest.mark.slow
def test_input_and_num_classes_options():
    result = run_cli("resnet18", "--input", "3x64x64", "--num-classes", "10")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("resnet18 on 3x64x64\n")
    fc = next(line for line in result.stdout.splitlines() if line.startswith("fc (Linear)"))
    assert fc.split()[2:4] == ["10", "0.0"]  # 10 outputs, 40 bytes
    # 11,689,512 with 1000 classes, less (512 + 1) * 990 for the smaller fc
    assert "parameters:     11,181,642" in result.stdout


@pytest.mark.slow
def test_errors_exit_with_status_2():
    unknown = run_cli("alexnett")
    assert unknown.returncode == 2
    assert "unknown model 'alexnett'" in unknown.stderr and "alexnet" in unknown.stderr
    assert unknown.stdout == ""
    malformed = run_cli("vgg16", "--input", "3by224")
    assert malformed.returncode == 2
    assert "--input must be positive sizes joined by 'x', like 3x224x224" in malformed.stderr
    assert malformed.stdout == ""


# ------------------------------------------------------------------ in-process: main(argv)


@pytest.mark.slow
def test_every_zoo_model_prints_with_its_default_input(capsys):
    for name in models.available():
        assert summary_module.main([name]) == 0, name
        out = capsys.readouterr().out
        shape = "x".join(map(str, models.default_input_shape(name)))
        assert out.startswith(f"{name} on {shape}\n"), name


def test_default_inputs_per_family(capsys):
    for name, shape in [("lenet5", "1x28x28"), ("lenet5_1998", "1x32x32"),
                        ("cifar_plain20", "3x32x32"), ("alexnet2012", "3x227x227"),
                        ("mobilenet_v1", "3x224x224")]:  # fmt: skip
        assert summary_module.main([name]) == 0
        assert capsys.readouterr().out.startswith(f"{name} on {shape}\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["alexnett"], "did you mean alexnet"),
        (["vgg16", "--input", "3x224"], "input_shape"),  # parses, but VGG needs (C, H, W)
        (["vgg16", "--input", "3xax224"], "--input must be positive sizes"),
        (["vgg16", "--input", "3x0x224"], "--input must be positive sizes"),
        (["vgg16", "--input", ""], "--input must be positive sizes"),
        (["vgg16", "--input", "3x32x32"], "VGG cannot run on one input of shape (3, 32, 32)"),
        (["lenet5", "--num-classes", "0"], "--num-classes must be >= 1"),
        (["lenet5", "--depth", "0"], "--depth must be >= 1"),
    ],
)
def test_usage_errors(argv, message, capsys):
    assert summary_module.main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_argparse_errors_and_help(capsys):
    assert summary_module.main([]) == 2  # no model
    assert "model" in capsys.readouterr().err
    assert summary_module.main(["lenet5", "--num-classes", "ten"]) == 2
    assert "invalid int value" in capsys.readouterr().err
    assert summary_module.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--input CxHxW" in out and "resnet152" in out


def test_depth_elementwise_train_and_aux_options(capsys):
    assert summary_module.main(["googlenet", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "inception3a (Inception)" in out and "inception3a.branch1x1" not in out
    assert "aux1" not in out
    assert summary_module.main(["googlenet", "--aux-logits", "--train", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "aux1 (InceptionAux)" in out and "13,378,280" in out
    assert summary_module.main(["resnet18", "--aux-logits"]) == 2
    assert "only googlenet" in capsys.readouterr().err
    assert summary_module.main(["lenet5", "--elementwise"]) == 0
    assert "features.relu1 (ReLU)" in capsys.readouterr().out


def test_dispatcher_reaches_summary(capsys):
    from cnnlib.__main__ import main as cnnlib_main

    assert cnnlib_main(["summary", "lenet5"]) == 0
    assert "classifier.fc2 (Linear)" in capsys.readouterr().out
