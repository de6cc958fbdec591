"""Checks that only torch needs: is it a tensor, and do the tensors of one call agree on device and
dtype. The shape checks are the NumPy layers' own (`cnnlib.numpy._checks`), which read only
``.ndim``, ``.shape`` and ``.dtype`` and so work on tensors unchanged.
"""

from __future__ import annotations

import torch

from cnnlib.numpy._checks import check_float_array, describe

__all__: list[str] = []


def check_tensor(name: str, x) -> None:
    """TypeError unless `x` is a torch.Tensor; a NumPy array gets told how to convert it."""
    if isinstance(x, torch.Tensor):
        return
    hint = ""
    if hasattr(x, "__array__") and hasattr(x, "shape"):
        hint = (
            " (convert a NumPy array with torch.from_numpy(...), or call the NumPy twin of this "
            "layer in cnnlib.numpy)"
        )
    raise TypeError(f"{name} must be a torch.Tensor, got {describe(x)}{hint}")


def check_float_tensors(**tensors) -> None:
    """Each argument a floating-point tensor, all on the device and of the dtype of the first.

    Called as ``check_float_tensors(x=x, w=w, b=b)``: the first keyword is the reference that the
    others must match, so the message can say which one to move or convert.
    """
    reference_name, reference = next(iter(tensors.items()))
    for name, tensor in tensors.items():
        check_tensor(name, tensor)
        check_float_array(name, tensor)
        if name == reference_name:
            continue
        if tensor.device != reference.device:
            raise ValueError(
                f"{name} is on {tensor.device} but {reference_name} is on {reference.device}: "
                f"move it with .to({reference_name}.device)"
            )
        if tensor.dtype != reference.dtype:
            raise TypeError(
                f"{name} has dtype {tensor.dtype} but {reference_name} has {reference.dtype}: "
                f"convert it with .to({reference_name}.dtype)"
            )
