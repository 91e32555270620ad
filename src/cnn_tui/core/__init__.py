"""The engine: params, data, model, training, evaluation, tuning, reports and runs.

Nothing here imports Textual, and nothing heavy (Keras, TensorFlow, matplotlib,
scikit-learn) is imported at package import time: each module imports those
inside the functions that need them, so the UI's first frame does not wait.
"""
