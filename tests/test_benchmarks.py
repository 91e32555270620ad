"""The benchmark harness itself: alternation, ratios against targets, the generated docs."""

from benchmarks import common, report


def test_alternate_swaps_who_goes_first_and_times_each_side():
    calls = []
    ours, ref = common.alternate(lambda: calls.append("o"), lambda: calls.append("r"), 3)
    assert calls == ["o", "r", "o", "r", "r", "o", "o", "r"]  # one untimed warm-up each, then alternating
    assert len(ours) == len(ref) == 3 and all(t >= 0 for t in ours + ref)


def test_ratios_and_targets_go_the_right_way():
    fast = common.speedup("loading", "x", [1.0, 1.0, 2.0], [3.0, 3.0, 3.0], target=1.5)
    assert fast.ratio == 3.0 and fast.met is True
    slow = common.overhead("training", "y", [1.2], [1.0], target=1.05)
    assert round(slow.ratio, 3) == 1.2 and slow.met is False
    reported = common.overhead("training", "z", [1.0], [1.0])
    assert reported.met is None and reported.op is None
    lag = common.single("responsiveness", "p99", 40.0, "ms", op="<=", target=50.0)
    assert lag.met is True


def test_docs_keep_hand_written_text_around_the_generated_table(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\nintro\n\n{report.START}\nold table\n{report.END}\n\n## Analysis\nkept\n")
    info = {"date": "2026-11-27", "cores": 2, "cpu": "cpu", "memory_gib": 24, "gpu": "none", "os": "Linux",
            "keras_backend": "tensorflow", "load_average_at_start": 0.5, "repeats": 3, "data_dir": "demo digits",
            "total_seconds": 600.0, "versions": {"python": "3.11"}}
    figure = common.speedup("loading", "cold load vs PIL loop", [1.0], [2.0], target=1.5).as_dict()
    report.update_docs(docs, info, [figure])
    text = docs.read_text()
    assert "old table" not in text and "intro" in text and "## Analysis\nkept" in text
    assert "| loading | cold load vs PIL loop | 1.00 s | 2.00 s | 2× | >= 1.5: met |" in text


# ---------- the tuning group's code paths, without Keras: a fake executor scores the trials


class _FakeExecutor:
    """Scores a trial from its params and epochs (a higher rate and more filters learn faster);
    each fit costs 1 s plus 0.1 s an epoch trained."""

    def start(self, x, y, work_dir):
        pass

    def run(self, specs, on_trial, prepare):
        from cnn_tui.core.tuning.trials import Trial

        for spec in map(prepare, specs):
            p = spec.config  # the whole configuration: tuned fields and fixed ones
            accuracy = 1 - 0.5 / (1 + spec.epochs * p["init_rate"] * 30 * p["num_filters"] / 8)
            on_trial(Trial(spec, "finished", spec.epochs, accuracy, 1 - accuracy,
                           1.0 + 0.1 * (spec.epochs - spec.initial_epoch), model_file="m" if spec.keep_model else None))

    def close(self):
        pass


def _tiny_images():
    from pathlib import Path

    import numpy as np

    from cnn_tui.core.data.dataset import ImageSet

    return ImageSet(np.zeros((30, 4, 4, 1), "float32"), np.arange(30) % 3, ["a", "b", "c"], [], Path("."))


def test_tuning_bench_hyperband_vs_grid_reports_time_and_pick_quality():
    from functools import partial

    from benchmarks import bench_tuning
    from cnn_tui.core.tuning import search as tuning

    figures = bench_tuning.hyperband_vs_grid(_tiny_images(), quick=True,
                                             search=partial(tuning.tune, executor=_FakeExecutor()))
    speed, pick = figures
    assert speed.name.startswith("hyperband vs full grid, 3 combinations") and speed.op == ">="
    assert speed.note.startswith("12 fits vs 9, 15 epochs trained vs 27") and "1.00 s whatever its epochs + 0.10 s an epoch" in speed.note
    assert pick.ours == 0.0 and "picked the same" in pick.note  # the fake scorer's best is promoted to the end


def test_tuning_bench_rotation_memory_and_epochs_trained():
    import os

    from benchmarks import bench_tuning

    calls = []
    times, errors = bench_tuning.rotate({"a": lambda: calls.append("a"), "b": lambda: calls.append("b"),
                                         "c": lambda: 1 / 0, "d": lambda: calls.append("d")}, 2,
                                        optional=("c",), once=("d",))
    assert calls == ["a", "b", "d", "b", "a"] and len(times["a"]) == 2 and times["c"] == [] and len(times["d"]) == 1
    assert errors["c"].startswith("ZeroDivisionError")
    tree = bench_tuning.tree_rss_mib()
    assert tree[os.getpid()] > 0
    assert bench_tuning.growth([{1: 100.0, 2: 100.0}, {1: 110.0, 2: 110.0}]) == (200.0, 220.0, 10.0)
    rounds = [(9, 1), (3, 3), (1, 9)]
    assert [bench_tuning.epochs_trained({"epochs_done": e, "rung": r}, rounds) for e, r in ((1, 0), (3, 1), (9, 2))] == [1, 2, 6]


def test_tuning_bench_executors_report_times_and_memory(monkeypatch):
    from functools import partial

    from benchmarks import bench_tuning
    from cnn_tui.core.tuning import search as tuning

    # every executor's side (in-process, jobs=2) runs the fake executor here
    monkeypatch.setattr(bench_tuning.tuning, "tune", partial(tuning.tune, executor=_FakeExecutor()))
    monkeypatch.setattr(bench_tuning, "plain_search", lambda images, hyper: 0.9)
    monkeypatch.setattr(bench_tuning, "cluster_ready", lambda: "no dask here")
    figures = {f.name: f for f in bench_tuning.executors(_tiny_images(), 2)}
    plain = figures["grid search, 12 fits: ours (in-process) vs scikeras+GridSearchCV"]
    assert len(plain.samples["ours"]) == 2 and plain.target == 1.05
    assert len(figures["grid search, 12 fits: --jobs 2 vs --jobs 1"].samples["ours"]) == 1  # worker sides run once
    assert figures["grid search, 12 fits: --cluster local:2 vs --jobs 2"].note == "not measured: no dask here"
    memory = figures["RSS growth over a 12-fit search, in-process (this process)"]
    assert memory.op == "<=" and "run 1:" in memory.note and "run 2:" in memory.note and "after fits 1, 5, 9, 12" in memory.note
