"""cocotb test modules run inside the simulator (the host side lives in bnn_hw.sim)."""
