"""cnnlib.numpy.conv (being written)."""

__all__: list[str] = []
