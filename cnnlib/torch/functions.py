"""cnnlib.torch.functions (being written)."""

__all__: list[str] = []
