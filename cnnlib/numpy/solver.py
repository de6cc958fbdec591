"""cnnlib.numpy.solver (being written)."""

__all__: list[str] = []
