"""What the zoo's families share: weight initialisation and the stages of residual networks."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["init_weights", "make_stage"]


def init_weights(model: nn.Module, linear_std: float | None = None) -> nn.Module:
    """He (Kaiming) initialisation for every conv, unit scale and zero shift for batch norm.

    Conv weights ~ N(0, 2 / fan_out): He et al. (2015) for ReLU networks, counting fan-out as the
    reference ResNet code does. Fully-connected layers keep PyTorch's default unless `linear_std`
    is given (VGG's classifier uses N(0, 0.01^2)). Biases start at zero.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)
    return model



def make_stage(
    make_block: Callable[..., nn.Module],
    in_channels: int,
    out_channels: int,
    num_blocks: int,
    stride: int,
) -> nn.Sequential:
    """A stage of residual blocks: (N, C_in, H, W) -> (N, C_out, H/stride, W/stride).

    Only the first block changes the shape, `make_block(in_channels, stride=stride)`; the other
    num_blocks - 1 keep it, `make_block(out_channels, stride=1)`.
    """
    first = make_block(in_channels, stride=stride)
    rest = (make_block(out_channels, stride=1) for _ in range(num_blocks - 1))
    return nn.Sequential(first, *rest)
