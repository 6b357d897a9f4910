"""cocotb testbenches that run generated Verilog and check it bit for bit against the reference."""
