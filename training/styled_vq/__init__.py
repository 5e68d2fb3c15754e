"""styled-vq reference model, training and export (PyTorch)."""
