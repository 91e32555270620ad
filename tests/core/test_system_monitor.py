"""The machine in view: a run's SystemSample events, with a fake NVML (pynvml's functions replaced)
and without one, sampled while the run goes and stopped with it, written to and read back from
events.jsonl."""

from __future__ import annotations

import threading
import time

import pytest

from cnn_tui.core.errors import UserError
from cnn_tui.core.events import SystemSample, TaskFinished
from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.runs import control, events_file, system_monitor
from cnn_tui.core.runs.execute import TaskSpec
from cnn_tui.core.runs.folder import Run
from cnn_tui.core.runs.system_monitor import Gpus, SystemMonitor, describe, last_sample, take_sample

from tests_support import fake_nvml, no_nvml


def test_a_fake_nvml_gives_each_gpus_figures_and_the_host_is_sampled_too(monkeypatch):
    calls = fake_nvml(monkeypatch)
    gpus = Gpus()
    sample = take_sample(gpus)
    gpus.close()
    first, second = sample.gpus
    assert first == {"index": 0, "name": "NVIDIA H100", "utilization": 87, "memory_used_mb": 10444.8,
                     "memory_total_mb": 81920.0, "temperature_c": 64, "power_w": 250.0}
    assert second["name"] == "NVIDIA H100" and second["power_w"] is None  # not supported: that figure only
    assert 0 <= sample.cpu_percent <= 100
    assert 0 < sample.memory_used_mb < sample.memory_total_mb
    assert calls == {"init": 1, "shutdown": 1, "utilization": 2}
    line = describe(sample)
    assert line.startswith("GPU0 87% 10.2/80 GB 64°C 250 W · GPU1 3% 1.0/80 GB 35°C · CPU ")
    assert " · RAM " in line and line.endswith(" GB")


def test_without_nvml_only_cpu_and_memory_show(monkeypatch):
    no_nvml(monkeypatch)
    sample = take_sample(Gpus())
    assert sample.gpus == [] and sample.cpu_percent is not None and sample.memory_total_mb > 0
    assert describe(sample).startswith("CPU ") and "GPU" not in describe(sample)


def test_an_nvml_error_leaves_the_gpus_out_once_and_the_sampling_goes_on(monkeypatch):
    calls = fake_nvml(monkeypatch, fail_after=2)
    samples: list = []
    with SystemMonitor(samples.append, interval=0.02):
        deadline = time.monotonic() + 10
        while len(samples) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(samples) >= 4
    assert len(samples[0].gpus) == 2 and all(s.gpus == [] for s in samples[1:])  # the 3rd read failed
    assert all(s.memory_total_mb for s in samples)
    assert calls["utilization"] == 3  # not asked again after the error
    assert calls["shutdown"] == 1


def test_the_sampler_never_fails_the_run_and_stops_when_its_block_ends(monkeypatch):
    no_nvml(monkeypatch)
    seen: list = []

    def emit(event):
        seen.append(event)
        if len(seen) == 2:
            raise OSError("a follower's pipe is gone")  # the monitor swallows it and goes on

    monitor = SystemMonitor(emit, interval=0.02)
    with monitor:
        assert monitor.running
        deadline = time.monotonic() + 10
        while len(seen) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert not monitor.running
    assert not any(t.name == "system-monitor" for t in threading.enumerate())
    count = len(seen)
    time.sleep(0.1)
    assert len(seen) == count >= 4  # nothing after the end
    assert all(isinstance(e, SystemSample) for e in seen)


def test_an_interval_of_zero_samples_nothing():
    monitor = SystemMonitor(lambda e: pytest.fail("sampled"), interval=0)
    with monitor:
        assert not monitor.running


def test_the_interval_comes_from_the_environment_and_a_bad_one_is_one_line(monkeypatch):
    monkeypatch.setenv("CNN_TUI_SYSTEM_SAMPLE_SECONDS", "0.25")
    assert system_monitor.sample_seconds() == 0.25
    monkeypatch.setenv("CNN_TUI_SYSTEM_SAMPLE_SECONDS", "soon")
    with pytest.raises(UserError, match="CNN_TUI_SYSTEM_SAMPLE_SECONDS must be a number of seconds"):
        system_monitor.sample_seconds()


def test_a_sample_round_trips_through_events_jsonl_and_the_last_one_is_read_back(tmp_path, monkeypatch):
    fake_nvml(monkeypatch)
    gpus = Gpus()
    first, second = take_sample(gpus), take_sample(gpus)
    gpus.close()
    writer = events_file.EventWriter(tmp_path)
    writer(first)
    writer(TaskFinished("train", "stopped"))
    writer(second)
    writer(TaskFinished("train", "finished"))
    writer.close()
    events = events_file.read_events(tmp_path)
    assert events[0] == first and events[2] == second
    assert last_sample(tmp_path) == second
    assert last_sample(tmp_path / "nowhere") is None


def test_a_training_run_writes_samples_while_it_goes_and_none_after_its_end(params_files, tmp_path, monkeypatch):
    fake_nvml(monkeypatch)
    monkeypatch.setenv("CNN_TUI_SYSTEM_SAMPLE_SECONDS", "0.05")
    data_path, hyper_path = params_files(hyper={"epochs": [2]})
    run = control.prepare(TaskSpec("train"), DataParams.load(data_path), HyperParams.load(hyper_path),
                          parent=tmp_path / "runs")
    outcome = control.run_here(Run.open(run.path), TaskSpec.load(run.path))
    assert outcome.status == "finished"
    events = events_file.read_events(run.path)
    samples = [e for e in events if isinstance(e, SystemSample)]
    assert samples and samples[0].gpus[0]["utilization"] == 87
    assert isinstance(events[-1], TaskFinished)  # the sampler ended before the run's end was written
    assert not any(t.name == "system-monitor" for t in threading.enumerate())


def test_the_line_shrinks_to_its_width_then_sums_several_gpus():
    gpu = {"utilization": 80, "memory_used_mb": 10240.0, "memory_total_mb": 81920.0, "temperature_c": 60,
           "power_w": 250.0}
    sample = SystemSample([{**gpu, "index": i, "temperature_c": 60 + i} for i in range(4)], 43.0, 5222.4, 131072.0)
    full = describe(sample)
    assert full.startswith("GPU0 80% 10/80 GB 60°C 250 W · GPU1 ") and full.endswith("CPU 43% · RAM 5.1/128 GB")
    assert describe(sample, width=len(full)) == full
    compact = describe(sample, width=130)
    assert compact.startswith("GPU0 80% 10/80G 60° 250W · GPU1 80% 10/80G 61° 250W") and len(compact) <= 130
    assert describe(sample, width=78) == "4 GPUs 80% 40/320G 63° 1000W · CPU 43% · RAM 5.1/128G"
