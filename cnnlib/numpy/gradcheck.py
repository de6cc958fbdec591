"""cnnlib.numpy.gradcheck (being written)."""

__all__: list[str] = []
