"""cnnlib.pretrained: networks the course trained itself, loaded by name, and transfer learning.

No ImageNet weights can be downloaded here, so the course ships its own, small and honest: a CIFAR
ResNet-20 and a small VGG-style net, each trained on two source tasks that the course generates
(`cnnlib.pretrained.tasks`): ten textured shapes, and the digits 0-4 drawn onto textures.

    >>> from cnnlib import pretrained
    >>> pretrained.available()
    ['resnet20_digits04', 'resnet20_shapes', 'vgg_small_digits04', 'vgg_small_shapes']
    >>> net = pretrained.load("resnet20_shapes")       # SHA-256 checked, eval mode
    >>> pretrained.info("resnet20_shapes")["accuracy"]  # doctest: +SKIP

- Weights are safetensors files (no pickle) beside ``weights/manifest.json``, which gives each
  file's SHA-256, size, architecture, classes, source data, the training command and seed, and
  the accuracy reached; `load` refuses a file whose hash differs. `python -m cnnlib pretrain NAME`
  retrains one from scratch on a CPU in minutes (`cnnlib.pretrained.pretrain`).
- `build(architecture, num_classes)`: the same network, freshly initialised (train from scratch).
- `load_state_dict_file(model, path)`: any local .safetensors or .pth state dict into a model,
  e.g. torchvision's ImageNet ResNet weights into the zoo's ResNets; mismatches are named.
- Transfer learning (`cnnlib.pretrained.transfer`): `adapt` (linear head, top stage,
  everything, scratch), `freeze` / `unfreeze` (frozen batch norm stays in eval mode),
  `replace_head`, `block_features`, `linear_probe`, `param_groups`.
"""

from .models import ARCHITECTURES, BLOCKS, SmallVGG, architecture_of, build
from .store import (
    LoadReport,
    WeightsError,
    available,
    info,
    load,
    load_state_dict_file,
    manifest,
    save_weights,
)
from .tasks import digits_task, shapes_task, source_task
from .transfer import (
    ProbeResult,
    adapt,
    block_features,
    count_parameters,
    freeze,
    linear_probe,
    param_groups,
    replace_head,
    unfreeze,
)

__all__ = [
    "ARCHITECTURES",
    "BLOCKS",
    "LoadReport",
    "ProbeResult",
    "SmallVGG",
    "WeightsError",
    "adapt",
    "architecture_of",
    "available",
    "block_features",
    "build",
    "count_parameters",
    "digits_task",
    "freeze",
    "info",
    "linear_probe",
    "load",
    "load_state_dict_file",
    "manifest",
    "param_groups",
    "replace_head",
    "save_weights",
    "shapes_task",
    "source_task",
    "unfreeze",
]
