"""cnnlib.pretrained: the shipped weights and their manifest, hash checks, the pretrain command,
loading foreign state dicts safely, and the transfer-learning helpers."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from cnnlib import pretrained
from cnnlib import torch as ct
from cnnlib.__main__ import main as cli
from cnnlib.pretrained import WeightsError
from cnnlib.pretrained.pretrain import RECIPES
from cnnlib.pretrained.store import PACKAGE_FOLDER, sha256_of
from cnnlib.torch import models

NAMES = ["resnet20_digits04", "resnet20_shapes", "vgg_small_digits04", "vgg_small_shapes"]


# --------------------------------------------------------------------------------------------
# The shipped weights


def test_every_recipe_has_shipped_weights_and_nothing_else():
    assert pretrained.available() == sorted(RECIPES) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_manifest_entry_describes_its_file(name):
    entry = pretrained.info(name)
    raw = (PACKAGE_FOLDER / entry["file"]).read_bytes()
    assert entry["sha256"] == sha256_of(raw) and entry["bytes"] == len(raw)
    assert entry["command"] == f"python -m cnnlib pretrain {name}"
    recipe = RECIPES[name]
    assert entry["architecture"] == recipe.architecture
    assert entry["source"]["task"] == recipe.source and entry["source"]["quick"] is False
    assert entry["recipe"]["epochs"] == recipe.epochs and entry["seed"] == recipe.seed
    assert entry["trained_with"]["threads"] == 1
    assert entry["accuracy"]["test"] > 0.97
    assert entry["input"]["shape"] == [3, 16, 16]


def test_the_weights_are_small():
    total = sum(pretrained.info(n)["bytes"] for n in NAMES)
    assert total < 3 * 2**20, f"{total:,} bytes of weights"


@pytest.mark.parametrize("name", NAMES)
def test_load_gives_the_architecture_with_the_manifest_parameters(name):
    entry = pretrained.info(name)
    net = pretrained.load(name)
    assert not net.training
    assert sum(p.numel() for p in net.parameters()) == entry["parameters"]
    assert net.fc.out_features == entry["num_classes"] == len(entry["class_names"])
    assert pretrained.architecture_of(net) == entry["architecture"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights_reach_the_manifest_accuracy(name):
    # Evaluation is deterministic up to float rounding, which may differ between CPUs: allow
    # one image either way.
    entry = pretrained.info(name)
    # Only the test split: each split is drawn from its own seed, so drawing one training image
    # (and one validation image) leaves the test set as the recipe's.
    if entry["source"]["task"] == "shapes":
        test = pretrained.shapes_task(1, 1, 2000).test
    else:
        test = pretrained.digits_task(range(5), copies=(1, 1, 8), seed=1).test
    assert len(test[1]) == entry["source"]["images"]["test"]
    accuracy = ct.evaluate(pretrained.load(name), test, device="cpu").accuracy
    assert abs(accuracy - entry["accuracy"]["test"]) <= 1 / len(test[1]) + 1e-9


def _copy_weights(tmp_path, name):
    entry = pretrained.info(name)
    shutil.copy(PACKAGE_FOLDER / "manifest.json", tmp_path / "manifest.json")
    shutil.copy(PACKAGE_FOLDER / entry["file"], tmp_path / entry["file"])
    return tmp_path / entry["file"], entry


def test_a_damaged_file_is_refused_naming_both_hashes(tmp_path):
    path, entry = _copy_weights(tmp_path, "vgg_small_shapes")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(WeightsError) as info:
        pretrained.load("vgg_small_shapes", folder=tmp_path)
    message = str(info.value)
    assert entry["sha256"] in message and sha256_of(bytes(raw)) in message
    assert "python -m cnnlib pretrain vgg_small_shapes" in message
    # the intact copy loads
    shutil.copy(PACKAGE_FOLDER / entry["file"], path)
    pretrained.load("vgg_small_shapes", folder=tmp_path)


def test_missing_file_unknown_name_and_bad_manifest(tmp_path):
    path, _ = _copy_weights(tmp_path, "vgg_small_shapes")
    path.unlink()
    with pytest.raises(FileNotFoundError, match=r"vgg_small_shapes\.safetensors is missing"):
        pretrained.load("vgg_small_shapes", folder=tmp_path)
    with pytest.raises(ValueError, match=r"no pretrained weights called 'resnet50'.*available: "
                                         r"resnet20_digits04"):
        pretrained.load("resnet50")
    with pytest.raises(FileNotFoundError, match=r"no manifest\.json"):
        pretrained.load("vgg_small_shapes", folder=tmp_path / "nowhere")
    (tmp_path / "manifest.json").write_text(json.dumps({"weights": []}))
    with pytest.raises(WeightsError, match="expected a cnnlib weights manifest"):
        pretrained.available(tmp_path)


# --------------------------------------------------------------------------------------------
# python -m cnnlib pretrain


def test_pretrain_quick_writes_a_loadable_file_bit_for_bit_repeatable(tmp_path, capsys):
    for out in (tmp_path / "a", tmp_path / "b"):
        assert cli(["pretrain", "vgg_small_digits04", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "vgg_small_digits04: 72,629 parameters" in printed
    first = pretrained.info("vgg_small_digits04", tmp_path / "a")
    second = pretrained.info("vgg_small_digits04", tmp_path / "b")
    assert first["sha256"] == second["sha256"]  # one thread, deterministic algorithms
    assert first["command"] == "python -m cnnlib pretrain vgg_small_digits04 --quick"
    assert first["source"]["quick"] is True and first["recipe"]["epochs"] == 1
    net = pretrained.load("vgg_small_digits04", folder=tmp_path / "a")
    assert isinstance(net, pretrained.SmallVGG)
    # the caller's torch settings are restored
    assert not torch.are_deterministic_algorithms_enabled()


def test_pretrain_command_line_errors(capsys):
    assert cli(["pretrain", "--list"]) == 0
    assert "resnet20_shapes" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli(["pretrain", "resnet50", "--quick"])
    assert "unknown name 'resnet50'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["pretrain", "vgg_small_shapes", "--install", "--quick"])


# --------------------------------------------------------------------------------------------
# Foreign state dicts: torchvision-style files into the zoo's ResNets


@pytest.fixture(scope="module")
def resnet18_state():
    torch.manual_seed(0)
    return {k: v.clone() for k, v in models.create("resnet18").state_dict().items()}


def _fresh_resnet18():
    torch.manual_seed(1)
    return models.create("resnet18")


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_load_state_dict_file_round_trip(tmp_path, resnet18_state, suffix):
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file(resnet18_state, path)
    else:
        torch.save(resnet18_state, path)
    model = _fresh_resnet18()
    report = pretrained.load_state_dict_file(model, path)
    assert report.missing == report.unexpected == []
    assert len(report.loaded) == len(resnet18_state)
    for key, value in model.state_dict().items():
        assert torch.equal(value, resnet18_state[key]), key


def test_load_state_dict_file_names_every_mismatch(tmp_path, resnet18_state):
    state = dict(resnet18_state)
    state["layer1.0.convX.weight"] = state.pop("layer1.0.conv1.weight")      # renamed
    state["fc.weight"] = torch.zeros(10, 512)                                # reshaped
    path = tmp_path / "mismatch.safetensors"
    save_file(state, path)
    model = _fresh_resnet18()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError) as info:
        pretrained.load_state_dict_file(model, path)
    message = str(info.value)
    assert "1 with another shape: fc.weight is [10, 512] in the file, [1000, 512] in the model" \
        in message
    assert "1 of the model's keys missing from the file: layer1.0.conv1.weight" in message
    assert "1 keys in the file that the model does not have: layer1.0.convX.weight" in message
    # nothing was loaded
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_load_state_dict_file_keeps_a_new_head_with_ignore(tmp_path, resnet18_state):
    path = tmp_path / "imagenet.pth"
    torch.save({"state_dict": resnet18_state, "epoch": 90}, path)  # a checkpoint
    model = models.create("resnet18", num_classes=5)
    with pytest.raises(WeightsError, match=r"pass ignore=\('fc.',\)"):
        pretrained.load_state_dict_file(model, path)
    report = pretrained.load_state_dict_file(model, path, ignore=("fc.",))
    assert report.ignored == ["fc.bias", "fc.weight"]
    assert torch.equal(model.conv1.weight, resnet18_state["conv1.weight"])


def test_files_without_num_batches_tracked_and_dataparallel_prefix(tmp_path, resnet18_state):
    old = {k: v for k, v in resnet18_state.items() if not k.endswith("num_batches_tracked")}
    save_file(old, tmp_path / "old.safetensors")  # as torchvision's first ResNet files
    pretrained.load_state_dict_file(_fresh_resnet18(), tmp_path / "old.safetensors")
    save_file({"module." + k: v for k, v in old.items()}, tmp_path / "dp.safetensors")
    with pytest.raises(WeightsError, match="saved from a DataParallel wrapper"):
        pretrained.load_state_dict_file(_fresh_resnet18(), tmp_path / "dp.safetensors")


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_pickle_that_runs_code_is_refused_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": _Payload()}, f)
    torch.save({"conv1.weight": _Payload()}, tmp_path / "evil_torch.pth")
    for file in (path, tmp_path / "evil_torch.pth"):
        with pytest.raises(WeightsError, match=r"refused|not a torch weights file"):
            pretrained.load_state_dict_file(_fresh_resnet18(), file)
    assert not (tmp_path / "pwned").exists()


def test_load_state_dict_file_argument_errors(tmp_path):
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        pretrained.load_state_dict_file({"a": 1}, tmp_path / "x.pth")
    with pytest.raises(FileNotFoundError, match="no weights file at"):
        pretrained.load_state_dict_file(nn.Linear(2, 2), tmp_path / "x.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        pretrained.load_state_dict_file(nn.Linear(2, 2), tmp_path / "junk.safetensors")


# --------------------------------------------------------------------------------------------
# Transfer-learning helpers


def test_freeze_holds_batchnorm_in_eval_mode_unless_told_otherwise():
    net = pretrained.build("cifar_resnet20", 5)
    pretrained.freeze(net, "conv1", "bn1", "layer1")
    net.train()
    assert not net.bn1.training and not net.layer1[0].bn1.training
    assert net.layer2[0].bn1.training
    assert not net.conv1.weight.requires_grad and net.layer2[0].conv1.weight.requires_grad
    pretrained.unfreeze(net)
    assert net.bn1.training and net.conv1.weight.requires_grad
    net.eval()
    assert not net.bn1.training  # back to following the model
    pretrained.freeze(net, batchnorm="train")
    net.train()
    assert net.bn1.training and pretrained.count_parameters(net)[0] == 0
    with pytest.raises(ValueError, match="has no submodule layer9"):
        pretrained.freeze(net, "layer9")
    with pytest.raises(ValueError, match='batchnorm must be "eval" or "train"'):
        pretrained.freeze(net, batchnorm=False)


def test_param_groups_scale_by_longest_prefix_and_skip_frozen():
    net = pretrained.build("cifar_resnet20", 5)
    pretrained.freeze(net, "conv1")
    groups = pretrained.param_groups(net, 0.1, {"layer1": 0.01, "layer1.0": 0.5})
    by_lr = {round(g["lr"], 12): sum(p.numel() for p in g["params"]) for g in groups}
    layer1_0 = sum(p.numel() for p in net.layer1[0].parameters())
    layer1 = sum(p.numel() for p in net.layer1.parameters())
    assert by_lr[round(0.1 * 0.01, 12)] == layer1 - layer1_0
    assert by_lr[0.05] == layer1_0
    assert sum(by_lr.values()) == pretrained.count_parameters(net)[0]
    with pytest.raises(ValueError, match="has no module layer7"):
        pretrained.param_groups(net, 0.1, {"layer7": 0.1})


def test_block_features_shapes_and_linear_probe():
    net = pretrained.build("cifar_resnet20", 10)
    X = torch.rand(6, 3, 16, 16)
    features = pretrained.block_features(net, X)
    assert {k: v.shape for k, v in features.items()} == {
        "stem": (6, 16 * 16), "layer1": (6, 16 * 16), "layer2": (6, 32 * 16),
        "layer3": (6, 64 * 16)}
    pooled = pretrained.block_features(net, X, blocks=["layer3"], pool=1)["layer3"]
    net.fc = nn.Identity()
    np.testing.assert_allclose(pooled, net.eval()(X).detach().numpy(), rtol=1e-5, atol=1e-6)
    # a probe on linearly separable features is perfect
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    F = rng.normal(size=(60, 8)) + 5 * np.eye(8)[y]
    assert pretrained.linear_probe(F, y, F, y, epochs=50).accuracy == 1.0


def test_adapt_linear_trains_only_the_new_head():
    net = pretrained.load("vgg_small_digits04")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    X = torch.rand(20, 3, 16, 16).numpy()
    y = np.arange(20) % 4
    pretrained.adapt(net, (X, y), "linear", steps=3, device="cpu")
    assert net.fc.out_features == 4
    after = net.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items() if not k.startswith("fc."))
    with pytest.raises(ValueError, match="how must be one of 'linear', 'top', 'all', 'scratch'"):
        pretrained.adapt(net, (X, y), "everything")
