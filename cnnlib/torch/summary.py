"""cnnlib.torch.summary (being written)."""

__all__: list[str] = []
