"""The engine, as packages by concern over a small kernel (errors, events, fileio, backend,
environment, places, memory); each package imports only those below it:
architectures < params < data | models < training < tuning | inspect < runs.

Nothing here imports Textual, and nothing heavy (Keras, TensorFlow, matplotlib,
scikit-learn) is imported at package import time: each module imports those
inside the functions that need them, so the UI's first frame does not wait.
"""
