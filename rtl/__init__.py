"""Amaranth HDL generators of the XNOR-popcount PE-array accelerator; reads the bnn_hw model form."""
