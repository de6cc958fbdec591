"""cnnlib.numpy.optim (being written)."""

__all__: list[str] = []
