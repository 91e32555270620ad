"""benchmarks/device_check.py: its docs section, and a whole --quick run on the CPU under JAX (slow)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import device_check

ROOT = Path(__file__).resolve().parents[1]


def _report(parts: dict) -> dict:
    facts = {"host": "box", "cpu": "cpu", "cores": 16, "keras": "3.15", "backend": "jax", "jax": "0.11",
             "jax_devices": ["gpu:0 NVIDIA H100"], "devices": ["gpu:0"]}
    return {"date": "2026-12-08 00:00 UTC", "quick": False, "machine": facts, "seconds": 480.0,
            "skipped": ["batch augmentation"], "parts": parts}


def test_write_docs_replaces_only_the_gpu_section(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n### Tuning\nkept\n\n### GPU\n\nNot measured.\n- old line\n\n### After\nalso kept\n")
    parts = {"throughput": {"result": [{"architecture": "cnn", "images": 8000, "shape": [28, 28, 1], "batch": 256,
                                        "images_per_second": 12345.6, "first_epoch_s": 3.2}]},
             "hyperband": {"error": "RuntimeError: boom"}}
    device_check.write_docs(device_check.markdown(_report(parts)), docs)
    text = docs.read_text()
    assert "Not measured." not in text and "old line" not in text
    assert "### Tuning\nkept" in text and "### After\nalso kept" in text
    assert text.count("### GPU") == 1 and "gpu:0 NVIDIA H100" in text
    assert "| cnn | 8000 × 28x28x1 | 256 | 12345.6 | 3.2 s |" in text
    assert "Failed parts: hyperband: RuntimeError: boom." in text
    device_check.write_docs(device_check.markdown(_report(parts)), docs)  # again: still one section
    assert docs.read_text() == text


def test_synthetic_images_are_learnable_shapes_and_balanced():
    images = device_check.synthetic(40, 8, 3, classes=4)
    assert images.x.shape == (40, 8, 8, 3) and images.x.dtype.name == "float32"
    assert 0.0 <= images.x.min() and images.x.max() <= 1.0
    assert sorted(set(images.y.tolist())) == [0, 1, 2, 3] and (images.y == 0).sum() == 10


@pytest.mark.slow  # about 2 minutes on a loaded 2-core machine (a JIT compile per network shape)
def test_quick_run_on_the_cpu_measures_every_part(tmp_path):
    out = tmp_path / "check.json"
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT / "src")}
    env.pop("OUT", None)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "device_check.py"), "--quick", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["machine"]["backend"] == "jax" and report["machine"]["jax_devices"]
    assert set(report["parts"]) == set(device_check.PARTS)
    assert all("error" not in part for part in report["parts"].values())
    assert all(row["images_per_second"] > 0 for row in report["parts"]["throughput"]["result"])
    compare = report["parts"]["train_vs_fit"]["result"]
    assert compare["train"]["status"] == "finished" and compare["plain_fit"]["total_s"] > 0
    assert report["parts"]["hyperband"]["result"]["fits_ok"] > 0
    assert "### GPU" in done.stdout
