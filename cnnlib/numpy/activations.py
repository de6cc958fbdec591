"""cnnlib.numpy.activations (being written)."""

__all__: list[str] = []
