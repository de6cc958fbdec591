"""cnnlib.numpy.batchnorm (being written)."""

__all__: list[str] = []
