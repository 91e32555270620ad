"""Training: one Keras fit with events and stop, the callbacks factory, evaluation, TensorBoard logs."""
