"""Data: find images (folders, pixel CSVs, CIFAR batches), decode, cache, split, check health."""
