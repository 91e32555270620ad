"""Models: the network and its file (NetModel), augmentation layers, optimizers and schedules, export."""
