"""cnnlib.numpy.dropout (being written)."""

__all__: list[str] = []
