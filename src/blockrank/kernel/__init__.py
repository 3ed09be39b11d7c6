"""The kernel: block-sparse attention and the layer-l* attention readout. Knows tensors and prompt blocks, nothing else.

Its surface for scripts (bench/, notebooks) is ``__all__``; the rest may change without notice.
"""

from blockrank._names import surface

__getattr__, __all__ = surface(__name__)
