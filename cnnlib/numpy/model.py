"""cnnlib.numpy.model (being written)."""

__all__: list[str] = []
