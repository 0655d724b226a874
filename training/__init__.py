"""Offline jobs: dataset loaders, the visitor simulator, training and evaluation."""
