"""Checking your own NumPy model against your PyTorch port, whatever the model."""
