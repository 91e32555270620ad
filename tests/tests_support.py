"""Constants several test folders share (importable because pytest puts tests/ on sys.path)."""

SEED_HYPER = {
    "init_rate": [0.02, 0.01], "decay_steps": 400, "decay_rate": 0.9, "kernel_size": 3,
    "num_filters": [32, 40], "num_units": [512, 800], "momentum": 0.9, "drop_out": 0.2,
    "epochs": [5, 10], "batch_size": [64, 80],
}
SEED_DATA = {"num_classes": 10, "train_dir": "C:/Datasets/mnist_png/training",
             "test_dir": "C:/Datasets/mnist_png/testing", "image_size": 28}
