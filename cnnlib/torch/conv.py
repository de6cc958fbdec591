"""cnnlib.torch.conv (being written)."""

__all__: list[str] = []
