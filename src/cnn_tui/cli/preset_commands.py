"""``cnn-tui presets``: list the named hyper-params sets, or print one as a hyper-params file.

``cnn-tui presets accurate > h.json`` writes a file that ``cnn-tui train --hyper h.json``
trains; the JSON goes to stdout untouched by Rich (no wrapping, no markup), exactly as
``HyperParams.save`` would write it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the parser is built from here too: nothing heavy before a command runs
    from cnn_tui.cli.console import CliConsole  # noqa: PLC0415 — built into the parser: the params table loads only when the command runs

Args = argparse.Namespace

EPILOG = """Without NAME: one line per preset, its name and what it is for.
With NAME: the preset as a complete hyper-params JSON file on stdout (every field written out),
e.g. cnn-tui presets accurate > h.json && cnn-tui train --data D.json --hyper h.json
(under --json: one object holding it as "hyper_params")."""


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("presets", "list the named hyper-params sets (seed, fast, accurate, transfer) or print one",
                cache=False, epilog=EPILOG)
    p.add_argument("name", nargs="?", metavar="NAME", help="the preset to print as a hyper-params JSON file")


def cmd_presets(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    from cnn_tui.core.params.presets import describe, preset, preset_names  # noqa: PLC0415 — built into the parser: the params table loads only when the command runs

    if args.name is None:
        names = preset_names()
        width = max(len(name) for name in names)
        for name in names:
            console.line(f"{name:<{width}}  {describe(name)}")
        return {"presets": [{"name": name, "description": describe(name)} for name in names]}
    values = preset(args.name).to_dict()  # validated: a preset that did not load would fail here, not in train
    if not args.json:
        sys.stdout.write(json.dumps(values, indent=2) + "\n")
        sys.stdout.flush()
    return {"name": args.name, "description": describe(args.name), "hyper_params": values}
