"""cnnlib.numpy.init (being written)."""

__all__: list[str] = []
