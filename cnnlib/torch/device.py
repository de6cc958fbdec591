"""cnnlib.torch.device (being written)."""

__all__: list[str] = []
