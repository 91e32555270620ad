"""Models: the architectures registry, the network and its file, augmentation, optimizers, export."""
