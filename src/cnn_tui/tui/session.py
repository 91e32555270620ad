"""What the user has loaded and produced so far, and which actions that allows.

Plain Python (no Textual), so the rules that enable menu items step by step,
as the seed app does, are easy to read and to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine's data modules import numpy: not before the first frame
    from cnn_tui.core.data.dataset import ImageSet
    from cnn_tui.core.models.model import NetModel
    from cnn_tui.core.params.files import DataParams, HyperParams
    from cnn_tui.core.training.evaluation import Evaluation
    from cnn_tui.core.tuning.search import TuningResult


@dataclass
class Session:
    data: DataParams | None = None
    hyper: HyperParams | None = None
    train_set: ImageSet | None = None
    test_set: ImageSet | None = None
    model: NetModel | None = None
    model_note: str = ""  # "new", "trained 5 epochs", "loaded from x.keras"...
    history: dict[str, list[float]] = field(default_factory=dict)
    evaluation: Evaluation | None = None
    tuning: TuningResult | None = None
    best_hyper: HyperParams | None = None
    suggested_rate: float | None = None  # the learning-rate finder's, for init_rate
    run_dir: Path | None = None  # the latest run folder: where Snap saves
    busy: str | None = None  # label of the heavy task running, if any
    stoppable: bool = False
    keras_error: str | None = None  # set when Keras could not be imported
    files: dict[str, Any] = field(default_factory=dict)  # last task's output files

    # ------------------------------------------------------------ prerequisites

    def _idle(self) -> str | None:
        return f"{self.busy} is running; wait for it or stop it (x)" if self.busy else None

    def _keras(self) -> str | None:
        return f"Keras is not available: {self.keras_error}" if self.keras_error else None

    def _need_data(self) -> str | None:
        return None if self.data else "load data params first (o), or create them (n)"

    def _need_hyper(self) -> str | None:
        return None if self.hyper else "load hyper params first (O), or create them (N)"

    def _need_train(self) -> str | None:
        return self._need_data() or (None if self.train_set else "load a training dataset first (l)")

    def _need_model(self) -> str | None:
        return None if self.model else "initialise a network model (i) or load one (M) first"

    def why_not(self, action: str) -> str | None:
        """None when ``action`` can run now, else the reason in a few words."""
        rules = {
            "save_data": lambda: self._need_data(),
            "save_hyper": lambda: self._need_hyper(),
            "load_train": lambda: self._idle() or self._need_data(),
            "load_test": lambda: self._idle() or self._need_data(),
            "split_folder": lambda: self._idle(),
            "check_data": lambda: self._idle() or self._need_data(),
            "load_model": lambda: self._idle() or self._keras(),
            "save_model": lambda: self._idle() or self._need_model(),
            "export_model": lambda: self._idle() or self._need_model(),
            "init_model": lambda: self._idle() or self._keras() or self._need_data() or self._need_hyper(),
            "train": lambda: self._train_rule(),
            "train_val": lambda: self._train_rule(),
            "train_calibrated": lambda: self._train_rule(),
            "evaluate": lambda: self._test_rule(),
            "predict": lambda: self._test_rule(),
            "predict_tta": lambda: self._test_rule(),
            "tune": lambda: (self._idle() or self._keras() or self._need_data() or self._need_hyper()
                             or self._need_train()),
            "tune_options": lambda: (self._idle() or self._keras() or self._need_data() or self._need_hyper()
                                     or self._need_train()),
            "lr_find": lambda: self._idle() or self._keras() or self._need_data() or self._need_hyper(),
            "apply_rate": lambda: self._need_hyper() or (None if self.suggested_rate else
                                                         "run the learning-rate finder (f) first"),
            "skip_fit": lambda: None if self.busy == "tuning" else "no search is running",
            "stop": lambda: None if self.busy and self.stoppable else "nothing is running",
            "apply_best": lambda: None if self.best_hyper else "run Tuning (u) first; it finds the best combination",
            "top_losses": lambda: None if self.evaluation is not None else (
                "run Prediction (p) first, or open a run that has one (7)"),
            "inspect_image": lambda: self._idle() or self._keras() or self._need_model(),
        }
        rule = rules.get(action)
        return rule() if rule else None

    def _train_rule(self) -> str | None:
        return (self._idle() or self._keras() or self._need_data() or self._need_hyper() or self._need_train()
                or self._need_model())

    def _test_rule(self) -> str | None:
        if reason := self._idle() or self._need_model() or self._need_data():
            return reason
        return None if self.test_set else "load a test dataset first (L)"

    # ------------------------------------------------------------ changes that invalidate others

    def set_data(self, data: DataParams) -> list[str]:
        """Replace the data params; unload image sets read with settings that changed."""
        notes = []
        old, self.data = self.data, data
        if old is None:
            return notes
        same_images = (old.image_size, old.color_mode) == (data.image_size, data.color_mode) and _same_listing(old, data)
        if self.train_set is not None and not (same_images and old.train_path == data.train_path):
            self.train_set = None
            notes.append("training set unloaded: the data params read it differently now; load it again (l)")
        if self.test_set is not None and not (same_images and old.test_path == data.test_path):
            self.test_set = None
            notes.append("test set unloaded: the data params read it differently now; load it again (L)")
        return notes

    def set_hyper(self, hyper: HyperParams) -> list[str]:
        self.hyper = hyper
        model_config = self.model.config if self.model else None
        if model_config is not None and model_config != hyper.first():
            return ["the network model was built with other hyper params; initialise a new one (i) to use these"]
        return []

    def model_label(self) -> str:
        if self.model is None:
            return "no model"
        return self.model_note or "model ready"


# The data fields that decide which images a set holds (and their groups), beside the folders.
LISTING_FIELDS = ("labels_csv", "images_dir", "path_column", "label_column", "split_column", "group_column",
                  "group_pattern", "val_dir")


def _same_listing(old: DataParams, new: DataParams) -> bool:
    return all(getattr(old, name) == getattr(new, name) for name in LISTING_FIELDS) and old.base_dir == new.base_dir
