"""The training wing: examples and synthetic data, teacher scores, losses, the trainer, export, calibration fitting.

Its surface for scripts (bench/, notebooks) is ``__all__``; the rest may change without notice.
"""

from blockrank._names import surface

__getattr__, __all__ = surface(__name__)
