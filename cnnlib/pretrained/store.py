"""Weight files and their manifest: load by name, verify the SHA-256, never unpickle.

A folder of pretrained weights holds ``manifest.json`` and one ``NAME.safetensors`` file per
network. safetensors is a JSON header plus raw tensor bytes: reading it runs no code, unlike
torch's pickle-based ``.pth``. The manifest says, per name, which file, its SHA-256, the
architecture and classes, the source data, the command and seed that trained it and the
accuracy it reached. `load` hashes the bytes it is about to use and refuses them when the hash
is not the manifest's.

`load_state_dict_file(model, path)` loads any state dict from a local file into a model:
safetensors, or torch's ``.pth`` through ``torch.load(weights_only=True)``, which refuses
anything but tensors and plain containers. A mismatch (missing or unexpected keys, wrong shapes)
is reported in full, named key by named key.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save_file
from torch import nn

from cnnlib.numpy._checks import describe

from .models import build

__all__ = [
    "PACKAGE_FOLDER",
    "LoadReport",
    "WeightsError",
    "available",
    "info",
    "load",
    "load_state_dict_file",
    "manifest",
    "save_weights",
    "sha256_of",
]

PACKAGE_FOLDER = Path(__file__).resolve().parent / "weights"
MANIFEST = "manifest.json"
FORMAT = 1


class WeightsError(ValueError):
    """A weight file that cannot be used: damaged, replaced, or made for another model."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _folder(folder) -> Path:
    return PACKAGE_FOLDER if folder is None else Path(folder)


def manifest(folder=None) -> dict:
    """The manifest of a weights folder (default: the weights that ship with cnnlib), as a dict
    {name: entry}; each entry has file, sha256, bytes, architecture, num_classes, class_names,
    parameters, input, source, recipe, seed, command, accuracy, tolerance and trained_with."""
    path = _folder(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {path.parent}: not a folder of pretrained "
                                f"weights (python -m cnnlib pretrain NAME --out FOLDER makes one)")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise WeightsError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(content, dict) or content.get("format") != FORMAT \
            or not isinstance(content.get("weights"), dict):
        raise WeightsError(f"{path}: expected a cnnlib weights manifest (format {FORMAT}) with "
                           f"a 'weights' table")
    return content["weights"]


def available(folder=None) -> list[str]:
    """The names `load` accepts (sorted), from the manifest of `folder` (default: cnnlib's)."""
    return sorted(manifest(folder))


def info(name: str, folder=None) -> dict:
    """The manifest entry of `name`; ValueError listing the names when it has none."""
    entries = manifest(folder)
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {describe(name)}")
    if name not in entries:
        raise ValueError(f"name: no pretrained weights called {name!r}; available: "
                         f"{', '.join(sorted(entries)) or 'none'}")
    return entries[name]


def _verified_bytes(name: str, entry: dict, folder: Path) -> bytes:
    path = folder / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing (the manifest lists it for {name!r}): restore it from the "
            f"repository (git checkout -- {path.name}) or rebuild it with "
            f"`python -m cnnlib pretrain {name}`")
    raw = path.read_bytes()
    got = sha256_of(raw)
    if got != entry["sha256"]:
        raise WeightsError(
            f"{path} has SHA-256 {got}, but the manifest says {entry['sha256']}: the file is "
            f"damaged or is not the one the manifest describes, so it was not loaded. Restore "
            f"it from the repository, or rebuild it with `python -m cnnlib pretrain {name}` "
            f"(which writes a new manifest beside the new file)")
    return raw


def load(name: str, folder=None) -> nn.Module:
    """The pretrained network `name`, its weights loaded and verified, in eval mode.

    ``net = cnnlib.pretrained.load("resnet20_shapes")``: a CIFAR ResNet-20 trained on textured
    shapes (`available()` lists the names, `info(name)` tells the rest). The file's SHA-256 is
    checked against the manifest before a byte of it is parsed; a mismatch raises WeightsError.
    folder: another weights folder, e.g. one that `python -m cnnlib pretrain` wrote.
    """
    folder = _folder(folder)
    entry = info(name, folder)
    raw = _verified_bytes(name, entry, folder)
    model = build(entry["architecture"], entry["num_classes"])
    try:
        state = load_safetensors_bytes(raw)
    except SafetensorError as error:  # pragma: no cover - the hash matched, so it parsed once
        raise WeightsError(f"{folder / entry['file']}: not a safetensors file ({error})") from error
    _load_checked(model, state, f"{folder / entry['file']}", ignore=())
    return model.eval()


def save_weights(model: nn.Module, path, metadata: dict[str, str] | None = None) -> str:
    """Write `model`'s state dict to `path` as safetensors; returns the file's SHA-256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    partial = path.with_name(path.name + ".part")
    save_file(state, partial, metadata=metadata)
    partial.replace(path)
    return sha256_of(path.read_bytes())


# ============================================================================================
# Any state dict from a local file


class LoadReport(NamedTuple):
    """What `load_state_dict_file` did: the keys it loaded and those it left alone."""

    loaded: list[str]
    ignored: list[str]
    missing: list[str]
    unexpected: list[str]


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    raw = path.read_bytes()
    if path.suffix == ".safetensors":
        try:
            return load_safetensors_bytes(raw)
        except SafetensorError as error:
            raise WeightsError(f"{path}: not a readable safetensors file ({error})") from error
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise WeightsError(
            f"{path}: refused. torch.load(weights_only=True) found something other than tensors "
            f"and plain containers in it (a pickled object could run code when loaded). If you "
            f"trust its author, save its state_dict() again, or convert it to .safetensors"
            f"\n  ({str(error).splitlines()[0]})") from error
    except (RuntimeError, EOFError, ValueError) as error:
        raise WeightsError(f"{path}: not a torch weights file ({error})") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a checkpoint: {"state_dict": ..., "epoch": ...}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict (parameter name -> tensor), got "
                           f"{type(state).__name__}")
    return state


def _listed(keys, limit: int = 12) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _load_checked(model: nn.Module, state: dict, where: str, ignore, strict: bool = True,
                  ) -> LoadReport:
    own = model.state_dict()
    ignored = sorted(k for k in set(state) | set(own) if k.startswith(tuple(ignore)))
    state = {k: v for k, v in state.items() if not k.startswith(tuple(ignore))}
    expected = {k: v for k, v in own.items() if not k.startswith(tuple(ignore))}
    # Batch norm's num_batches_tracked came with PyTorch 0.4.1; files saved before it (such as
    # torchvision's first ImageNet ResNets) lack it, and load_state_dict fills it in.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items()
                   if k in state and state[k].shape != v.shape]
    problems = []
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} with another shape: " + "; ".join(
            f"{k} is {list(got)} in the file, {list(want)} in the model"
            for k, got, want in wrong_shape[:12]))
    if strict and missing:
        problems.append(f"{len(missing)} of the model's keys missing from the file: "
                        f"{_listed(missing)}")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} keys in the file that the model does not have: "
                        f"{_listed(unexpected)}")
    if problems:
        hint = ""
        if any(k.startswith("module.") for k in unexpected):
            hint = ("\nThe file's keys start with 'module.': it was saved from a DataParallel "
                    "wrapper; strip that prefix first.")
        elif wrong_shape and all(k.split(".")[0] == "fc" for k, _, _ in wrong_shape):
            hint = ("\nOnly the classifier differs (another number of classes): pass "
                    "ignore=('fc.',) to keep the model's own head.")
        raise WeightsError(f"{where} does not fit {type(model).__name__}:\n  "
                           + "\n  ".join(problems) + hint)
    model.load_state_dict(state, strict=False)
    return LoadReport(sorted(state), ignored, missing, unexpected)


def load_state_dict_file(model: nn.Module, path, ignore=(), strict: bool = True) -> LoadReport:
    """Load the weights in a local file `path` into `model`, checking that they fit.

    path: a ``.safetensors`` file, or torch's ``.pth`` / ``.pt`` (read with
    ``torch.load(weights_only=True)``, so a file holding arbitrary pickled objects is refused
    instead of run). A checkpoint ``{"state_dict": ...}`` is unwrapped. The zoo's ResNets use
    torchvision's module names, so torchvision's ImageNet weight files load into
    `cnnlib.torch.models.create("resnet18")` and friends.

    ignore: key prefixes to leave alone, e.g. ``("fc.",)`` to keep a new classifier. Every other
    key must be in both the file and the model with the same shape; otherwise a WeightsError
    lists the missing keys, the unexpected ones and each shape mismatch. strict=False allows
    missing and unexpected keys (never a wrong shape). Returns a `LoadReport`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    if isinstance(ignore, str):
        ignore = (ignore,)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    return _load_checked(model, _read_state_dict(path), str(path), ignore, strict)
