"""``tune --ensemble``: the fold models of the best combination (or of the ``--ensemble-top K`` best)
kept in the run folder as ``ensemble/`` and averaged into ``ensemble.keras``.

Each finished fit of such a search saved its model in the search's work folder as it ended
(``TrialSpec.save_fold``), so no fold model is held in memory during the search and a resumed search
keeps those already saved; here the chosen ones are moved out of it, given the search's class names
and their combination's hyper params, and averaged (``models.ensemble``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_tui.core.models.ensemble import average
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.tuning.search import TuningResult, best_hyper_params, ensemble_folds

ENSEMBLE_FILE = "ensemble.keras"
MEMBERS_FOLDER = "ensemble"


@dataclass(frozen=True)
class FoldEnsemble:
    path: Path
    members: list[Path]
    combinations: int

    def details(self, run_dir: Path) -> dict[str, Any]:
        return {"model": self.path.name, "combinations": self.combinations,
                "members": [str(p.relative_to(run_dir)) for p in self.members]}


def keep_fold_ensemble(result: TuningResult, work_dir: Path, run_dir: Path, *, class_names: list[str],
                       hyper: HyperParams, top: int) -> FoldEnsemble | None:
    """Move the chosen folds' models to ``run_dir/ensemble/`` and save their average as
    ``run_dir/ensemble.keras``; None when fewer than two fold models were kept."""
    chosen = ensemble_folds(result, work_dir, top)
    if sum(len(paths) for _, paths in chosen) < 2:
        return None
    folder = run_dir / MEMBERS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    moved: list[Path] = []
    members: list[NetModel] = []
    for rank, (params, paths) in enumerate(chosen, start=1):
        config = best_hyper_params(hyper, params).first()
        for path in paths:
            fold = path.stem.rsplit("-f", 1)[-1]
            target = folder / (f"fold-{fold}.keras" if len(chosen) == 1 else f"combination-{rank}-fold-{fold}.keras")
            path.replace(target)
            moved.append(target)
            net = NetModel.load(target)
            net.class_names, net.config = list(class_names), config
            net.save(target)  # the member on its own is a whole cnn-tui model too: its names and params
            members.append(net)
    ensemble = average(members, labels=[str(p.relative_to(run_dir)) for p in moved])
    out = ensemble.save(run_dir / ENSEMBLE_FILE)
    return FoldEnsemble(out, moved, len(chosen))
