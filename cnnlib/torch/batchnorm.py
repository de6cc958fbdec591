"""cnnlib.torch.batchnorm (being written)."""

__all__: list[str] = []
