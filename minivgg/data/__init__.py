"""Datasets, preprocessing and loading (Sect. 3.1)."""
