"""cnnlib.numpy.pool (being written)."""

__all__: list[str] = []
