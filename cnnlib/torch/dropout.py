"""cnnlib.torch.dropout (being written)."""

__all__: list[str] = []
