"""cnnlib.numpy.regularization (being written)."""

__all__: list[str] = []
