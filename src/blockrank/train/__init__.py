"""The training wing: examples and synthetic data, teacher scores, losses, the trainer, export, calibration fitting."""
