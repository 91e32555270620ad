"""The questions the main screen asks, worded once: each function builds its dialog (``screens.confirm``)
from the figures the caller decided on; the caller pushes it and acts on the answer.

A yes / no dialog answers True or False (None when dismissed otherwise); a choice dialog answers one of the
answer strings named here, or None on escape.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cnn_tui.tui.screens.confirm import ChoiceScreen, ConfirmScreen
from cnn_tui.tui.widgets.tables import display_path

# answers of the choice dialogs
LEAVE_RUNNING = "leave"
STOP_RUN = "stop"
SEARCH_AT_RANDOM = "random"
# the strategies "Tuning with options…" offers: answer -> (strategy, pruning)
TUNING_STRATEGIES = {"grid": ("grid", "none"), "hyperband": ("hyperband", "none"), "grid-median": ("grid", "median"),
                     "random": ("random", "none"), "tpe": ("tpe", "none")}


# ---------------------------------------------------------------- quitting


def unsaved_params_note(dirty: Iterable[str]) -> str:
    """`` The data and hyper params have changes not saved to a file.``, or "" when nothing is unsaved."""
    kinds = sorted(dirty)
    if not kinds:
        return ""
    return " ".join(("", "The", " and ".join(f"{k} params" for k in kinds), "have changes not saved to a file."))


def quit_while_run_goes(busy: str, run_name: str | None, unsaved: str) -> ChoiceScreen:
    """q while a run process is followed: LEAVE_RUNNING (the default), STOP_RUN, or cancel."""
    name = run_name if run_name is not None else "the new run"
    question = (f"{busy.capitalize()} runs in its own process (run {name}). Leave it running and "
                f"follow it later from the Runs view, or stop it (it saves what it has)?{unsaved}")
    return ChoiceScreen("Quit cnn-tui?", question,
                        [(LEAVE_RUNNING, "Leave it running", "l"), (STOP_RUN, "Stop it", "s"), ("cancel", "Cancel", "c")],
                        default=LEAVE_RUNNING)


def quit_while_task_runs(busy: str, unsaved: str) -> ConfirmScreen:
    """q while a task runs in this process: yes stops it and quits."""
    question = f"{busy.capitalize()} is running. Stop it (keeping what was saved) and quit?{unsaved}"
    return ConfirmScreen("Quit cnn-tui?", question, yes="Stop and quit", no="Keep running")


def quit_with_unsaved_params(unsaved: str) -> ConfirmScreen:
    """q with params edited and not saved (``unsaved``: from ``unsaved_params_note``): yes quits."""
    # the keys that save what is unsaved: s the data params, S the hyper params
    keys = " / ".join(key for key, kind in (("s", "data params"), ("S", "hyper params")) if kind in unsaved)
    saves = f"{keys} save{'' if ' / ' in keys else 's'} them" if keys else "save them first"
    return ConfirmScreen("Quit cnn-tui?", f"{unsaved.strip().removesuffix('.')} ({saves}). Quit anyway?",
                         yes="Quit", no="Stay")


# ---------------------------------------------------------------- runs and tuning


def stop_run(run_name: str) -> ConfirmScreen:
    """The Runs view's k: yes asks the run to stop."""
    return ConfirmScreen("Stop run?", f"Stop run {run_name}? It saves what it has (its last whole epoch or fit) "
                         "and ends.", yes="Stop it", no="Keep it running")


def grid_too_large(combinations: int, limit: int, folds: int, sample: int) -> ChoiceScreen:
    """A grid over the combination limit: SEARCH_AT_RANDOM (``sample`` combinations), or cancel (the default)."""
    question = (f"The grid has {combinations:,} combinations, more than the limit of {limit:,} "
                f"(CNN_TUI_MAX_COMBINATIONS): searched one by one, that is {combinations * folds:,} trainings. "
                f"Search {sample} combinations drawn at random instead?")
    return ChoiceScreen("Tuning grid too large", question,
                        [(SEARCH_AT_RANDOM, f"Search {sample} at random", "r"), ("cancel", "Cancel", "c")],
                        default="cancel")


def large_grid(combinations: int, folds: int, epochs: int, seconds: float | None = None) -> ConfirmScreen:
    """A grid under the limit that still means many trainings or a long wait (``seconds``, estimated): yes starts it."""
    took = f" About {_duration(seconds)}." if seconds is not None else " This can take very long."
    question = (f"The grid has {combinations} combinations × {folds} folds = {combinations * folds} "
                f"trainings of {epochs}+ epochs each.{took} Start?")
    return ConfirmScreen("Long tuning search", question, yes="Start")


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1.5:
        return "a minute"
    if minutes < 90:
        return f"{round(minutes)} minutes"
    return f"{minutes / 60:.1f} hours"


def tuning_strategy(combinations: int, sample: int) -> ChoiceScreen:
    """U: one of TUNING_STRATEGIES (hyperband is the default), or None."""
    # five compact buttons fit an 80-column terminal; escape cancels (halving is the CLI's: --strategy halving)
    options = [("grid", "Grid", "g"), ("hyperband", "Hyperband", "h"), ("grid-median", "Grid+prune", "m"),
               ("random", "Random", "r"), ("tpe", "TPE", "t")]
    question = "\n".join((
        f"Grid: all {combinations:,} combinations, every epoch.",
        "Hyperband: every combination a few epochs; the best third trains on, round after round.",
        "Grid+prune: a fit whose validation accuracy falls below the median stops early.",
        f"Random: {min(sample, combinations)} combinations drawn from the grid.",
        f"TPE: {min(sample, combinations)} combinations, each proposed from the scores of those before (Optuna).",
        "Escape cancels."))
    return ChoiceScreen("Tuning strategy", question, options, default="hyperband", width=78)


# ---------------------------------------------------------------- params and data


def hyper_preset(presets: list[tuple[str, str]]) -> ChoiceScreen:
    """``presets``: (name, description), at most nine (a digit key each); answers a name or None."""
    lines = [f"{i}  {name}: {description}" for i, (name, description) in enumerate(presets, 1)]
    choices = [(name, name, str(i)) for i, (name, _) in enumerate(presets, 1)]
    return ChoiceScreen("New hyper params from preset", "\n".join(lines), choices, default=presets[0][0],
                        width=18 * len(presets) + 4)


def load_split_params(counts: str, data_params: Path) -> ConfirmScreen:
    """After "Split a folder…": yes loads the data params the split wrote."""
    return ConfirmScreen("Split done", f"{counts}. Load its data params ({display_path(data_params)}) now? "
                         "They replace the data params in use.", yes="Load", no="Not now")
