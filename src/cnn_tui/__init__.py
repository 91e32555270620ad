"""cnn-tui: convolutional image classifiers from the terminal."""

__version__ = "0.1.0"
