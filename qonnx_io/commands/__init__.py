"""Subcommands of the QONNX spoke."""
