"""PyTorch training of binarized networks (BinaryNet recipe); writes the bnn_hw model form."""
