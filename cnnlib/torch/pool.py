"""cnnlib.torch.pool (being written)."""

__all__: list[str] = []
