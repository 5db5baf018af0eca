"""Layer 4: the function transforms (torch.func semantics) and pytrees."""
