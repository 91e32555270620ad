"""Run every benchmark and publish the figures: ``make bench`` (or ``python benchmarks/run.py``).

Each group runs in a fresh Python process (so one group's Keras state, caches and memory do
not colour the next), prints its figures, and the collected results go to
``benchmarks/results/latest.json`` and into the generated table of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common, report  # noqa: E402

GROUPS = ("startup", "loading", "training", "runs", "responsiveness", "tuning", "accuracy", "trust")


@dataclass
class Context:
    data_dir: Path | None  # a user's real folder (training/, testing/); None: demo digits only
    repeats: int
    quick: bool


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        help="a real image folder with training/<class>/ and testing/<class>/ (default: the demo digits)")
    parser.add_argument("--only", nargs="+", choices=GROUPS, help="run only these groups")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sets and one repeat: checks the benchmarks work, figures are rough")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--group", choices=GROUPS, help=argparse.SUPPRESS)  # internal: run one group here
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_group(name: str, args: argparse.Namespace) -> None:
    """Inside the child process: run one group and write its figures as JSON."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    module = importlib.import_module(f"benchmarks.bench_{name}")
    context = Context(args.data_dir.resolve() if args.data_dir else None, 1 if args.quick else args.repeats, args.quick)
    figures = module.run(context)
    common.write_json(args.out, [f.as_dict() for f in figures])


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.group:
        run_group(args.group, args)
        return 0
    results_dir = common.ROOT / "benchmarks" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    figures: list[dict] = []
    failed: list[str] = []
    started = time.perf_counter()
    info = common.machine()
    for name in args.only or GROUPS:
        common.log(f"== {name}")
        out = results_dir / f"{name}.json"
        out.unlink(missing_ok=True)
        command = [sys.executable, str(Path(__file__).resolve()), "--group", name, "--out", str(out), "--repeats", str(args.repeats)]
        command += ["--quick"] if args.quick else []
        command += ["--data-dir", str(args.data_dir)] if args.data_dir else []
        group_started = time.perf_counter()
        code = subprocess.call(command, cwd=common.ROOT)
        if code or not out.exists():
            failed.append(name)
            common.log(f"   {name} failed (exit code {code})")
            continue
        group = json.loads(out.read_text(encoding="utf-8"))
        figures += group
        common.log(report.table(group))
        common.log(f"   ({time.perf_counter() - group_started:.0f} s)")
    info["total_seconds"] = round(time.perf_counter() - started, 1)
    info["quick"] = args.quick
    info["repeats"] = 1 if args.quick else args.repeats
    info["data_dir"] = str(args.data_dir) if args.data_dir else "demo digits"
    common.write_json(results_dir / "latest.json", {"machine": info, "figures": figures, "failed": failed})
    print(report.table(figures))
    print(f"\n{len(figures)} figures in {info['total_seconds']:.0f} s; {sum(1 for f in figures if f['met'] is False)} targets not met")
    if not args.no_docs and not args.only and not args.quick:
        path = report.update_docs(common.ROOT / "docs" / "benchmarks.md", info, figures)
        print(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
