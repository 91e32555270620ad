import sys
import types

from cnn_tui.core import backend


def test_out_of_memory_is_recognised_while_tensorflow_is_half_imported(monkeypatch):
    # the TUI imports TensorFlow in a background thread; a task failing meanwhile sees a module without .errors
    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    assert backend.is_out_of_memory(MemoryError()) is True
    assert backend.is_out_of_memory(ValueError("bad value(s) in fds_to_keep")) is False
