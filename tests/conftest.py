"""Shared fixtures: tiny real image folders made on the fly, tiny hyper params, an isolated cache."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests_support import TINY_HYPER, write_image_folder  # noqa: F401  (re-exported for fixtures)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own decoded-image cache, so cache state never leaks between tests."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("CNN_TUI_CACHE_DIR", str(folder))
    # no test reads or writes the user's settings (the TUI's theme)
    monkeypatch.setenv("CNN_TUI_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.delenv("CNN_TUI_CACHE", raising=False)
    return folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "training", **kwargs) -> Path:
        return write_image_folder(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def params_files(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """Write a data-params and hyper-params pair for tiny training/testing folders."""

    def make(classes: int = 3, per_class: int = 12, test_per_class: int = 6, size: int = 12, hyper: dict | None = None,
             **data_extra) -> tuple[Path, Path]:
        write_image_folder(tmp_path / "data" / "training", classes, per_class, size, seed=1)
        write_image_folder(tmp_path / "data" / "testing", classes, test_per_class, size, seed=2)
        inputs = tmp_path / "app_input"
        inputs.mkdir(exist_ok=True)
        data = {"num_classes": classes, "train_dir": "../data/training", "test_dir": "../data/testing",
                "image_size": size, "result_dir": "../results", **data_extra}
        data_path = inputs / "data.json"
        hyper_path = inputs / "hyper.json"
        data_path.write_text(json.dumps(data))
        hyper_path.write_text(json.dumps({**TINY_HYPER, **(hyper or {})}))
        return data_path, hyper_path

    return make


# ---- used by the TUI tests (tests/tui and tests/reliability)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a temporary working folder, so relative paths the UI shows are short and fixed."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write_json(tmp_path: Path):
    def write(name: str, data: object) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data) if not isinstance(data, str) else data)
        return path

    return write


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (Textual's Pilot is async); no plugin needed."""
    import asyncio
    import inspect

    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames  # noqa: SLF001
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture(autouse=True)
def _no_run_left_running(tmp_path: Path):
    """Run processes a test started (detached, they outlive it) are stopped when it ends, pass or fail."""
    yield
    from cnn_tui.core.errors import UserError
    from cnn_tui.core.runs import control
    from cnn_tui.core.runs.folder import effective_status, read_run

    for record_file in tmp_path.rglob("run.json"):
        record = read_run(record_file.parent)
        if not record or record.get("pid") == os.getpid() or effective_status(record) != "running":
            continue
        try:
            control.stop(record_file.parent, wait=True, timeout=30)
        except UserError:
            continue
        record = read_run(record_file.parent) or {}
        if effective_status(record) == "running":
            os.kill(int(record["pid"]), 9)


@pytest.fixture(scope="session", autouse=True)
def _no_runs_in_the_checkout() -> Iterator[None]:
    """Tests write their runs under tmp_path: a run folder appearing in the checkout's results/ is a test
    that forgot its result_dir (or --out) and would litter every developer's tree."""
    results = Path(__file__).resolve().parents[1] / "results"
    before = set(os.listdir(results)) if results.is_dir() else set()
    yield
    after = set(os.listdir(results)) if results.is_dir() else set()
    assert after <= before, f"tests wrote run folders into {results}: {sorted(after - before)}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A ``tensorflow_only`` test is skipped, saying why, on another backend (``make test`` runs
    the backend-neutral tests on JAX too), rather than failing there."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs the TensorFlow backend (this run: KERAS_BACKEND={backend})")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)
