"""cnnlib.torch.models: the case-study architectures (being written)."""
