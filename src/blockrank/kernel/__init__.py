"""The kernel: block-sparse attention and the layer-l* attention readout. Knows tensors and prompt blocks, nothing else."""
