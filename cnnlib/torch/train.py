"""cnnlib.torch.train (being written)."""

__all__: list[str] = []
