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
