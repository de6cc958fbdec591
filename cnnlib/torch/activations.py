"""cnnlib.torch.activations (being written)."""

__all__: list[str] = []
