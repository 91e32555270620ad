import sys
import types

from cnn_tui.core import backend


def test_out_of_memory_is_recognised_while_tensorflow_is_half_imported(monkeypatch):
    # the TUI imports TensorFlow in a background thread; a task failing meanwhile sees a module without .errors
    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    assert backend.is_out_of_memory(MemoryError()) is True
    assert backend.is_out_of_memory(ValueError("bad value(s) in fds_to_keep")) is False


def test_info_names_the_backend_its_version_and_every_device_it_sees():
    from importlib import metadata

    facts = backend.info()
    keras = backend.load_keras()
    assert facts["backend"] == keras.backend.backend()
    package = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[facts["backend"]]
    try:
        expected = metadata.version(package)
    except metadata.PackageNotFoundError:
        expected = metadata.version(f"{package}-cpu")
    assert facts["backend_version"] == expected
    assert facts["devices"][0] == "CPU:0"  # the CPU is a device too, where a GPU is there as well
    gpus = [d for d in facts["devices"] if d.startswith("GPU:")]
    assert len(gpus) == len(facts["gpus"])


def test_info_on_jax_lists_each_virtual_cpu_device(tmp_path):
    import json
    import os
    import subprocess

    import pytest

    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join([str(p) for p in sys.path if p])}
    out = subprocess.run([sys.executable, "-m", "cnn_tui", "info", "--json"], capture_output=True, text=True,
                         env=env, timeout=300, check=True).stdout
    facts = json.loads(out)
    assert facts["backend"] == "jax" and facts["devices"] == ["CPU:0", "CPU:1"]
