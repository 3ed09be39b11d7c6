"""The evaluation wing: data readers, first stages and encoders, baselines, metrics, speed benchmarks, run files.

Its surface for scripts (bench/, notebooks) is ``__all__``; the rest may change without notice.
"""

from blockrank._names import surface

__getattr__, __all__ = surface(__name__)
