"""Every user action once: menu, label, key, footer label and what it calls.

The main screen's bindings, the menus, the command palette and the keys
overview are all generated from this table, so they never disagree; every
one of them runs an action through ``MainScreen.action_run(name)``, which
calls what the action's entry names.
"""

from __future__ import annotations

from dataclasses import dataclass

MENUS = ("App", "Tasks", "Help")


@dataclass(frozen=True)
class Action:
    name: str  # what the session's rules (``Session.why_not``) and the bindings call it
    menu: str
    label: str
    key: str  # Textual key name
    help: str
    calls: str  # what it runs: "part.method" of the main screen ("params.load_data"), or a method of the screen
    footer: str = ""  # short label when shown in the footer
    show_key: str = ""  # how the key is written for people, when not the key name itself

    @property
    def key_label(self) -> str:
        return self.show_key or self.key


ACTIONS: tuple[Action, ...] = (
    # App menu: the inputs (params, datasets, model)
    Action("new_data", "App", "New data params", "n", "start data params from defaults in a form",
           "params.new_data"),
    Action("load_data", "App", "Load data params…", "o", "open a data-params JSON file", "params.load_data"),
    Action("edit_data", "App", "Edit data params", "d", "change classes, folders, image size, results folder",
           "params.edit_data"),
    Action("save_data", "App", "Save data params…", "s", "write the data params to a JSON file", "params.save_data"),
    Action("new_hyper", "App", "New hyper params", "N", "start hyper params from the defaults of the original CNN App",
           "params.new_hyper"),
    Action("new_hyper_preset", "App", "New hyper params from preset…", "P",
           "start hyper params from a named preset (seed, fast, accurate, transfer) in the form",
           "params.new_hyper_preset"),
    Action("load_hyper", "App", "Load hyper params…", "O", "open a hyper-params JSON file", "params.load_hyper"),
    Action("edit_hyper", "App", "Edit hyper params", "h", "change hyper params; csv fields take several values",
           "params.edit_hyper"),
    Action("save_hyper", "App", "Save hyper params…", "S", "write the hyper params to a JSON file",
           "params.save_hyper"),
    Action("load_train", "App", "Load training dataset", "l", "read, shuffle and scale the training images",
           "task_controller.load_train"),
    Action("load_test", "App", "Load test dataset", "L", "read, shuffle and scale the test images",
           "task_controller.load_test"),
    Action("split_folder", "App", "Split a folder…", "F",
           "split one folder per class into training/ and testing/ (stratified; links, never moves)",
           "data_tools.split"),
    Action("check_data", "App", "Check data health", "H",
           "images per class, duplicates, train/test leakage, odd sizes, unreadable files", "data_tools.check"),
    Action("load_model", "App", "Load network model…", "M", "open a trained .keras model", "params.load_model"),
    Action("save_model", "App", "Save network model…", "W", "write the model to a .keras file", "params.save_model"),
    Action("export_model", "App", "Export model…", "X",
           "write the model as a SavedModel, ONNX or LiteRT file and check it predicts the same", "model_export.open"),
    Action("runs", "App", "Runs", "7", "every run in the results folders: Enter opens or follows one, k stops it, "
           "space marks and c compares", "show_runs"),
    Action("quit", "App", "Quit", "q", "leave cnn-tui (asks first while a task runs; a run may go on)",
           "task_controller.quit", footer="Quit"),
    # Tasks menu
    Action("edit_hyper", "Tasks", "Edit hyper params", "h", "change hyper params; csv fields take several values",
           "params.edit_hyper"),
    Action("init_model", "Tasks", "Initialize new network model", "i", "build the CNN and show its summary",
           "task_controller.init_model", footer="Init"),
    Action("train", "Tasks", "Training only", "t", "train on the whole training set", "task_controller.train",
           footer="Train"),
    Action("train_val", "Tasks", "Training with validation", "v",
           "train, holding out the validation fraction to compare", "task_controller.train_with_validation",
           footer="Train+val"),
    Action("train_calibrated", "Tasks", "Training with validation and calibration", "V",
           "train holding out the validation fraction, then fit a temperature on it so the probabilities match how "
           "often the model is right (kept in the model)", "task_controller.train_calibrated"),
    Action("evaluate", "Tasks", "Evaluation", "e", "test accuracy and loss, per-class report",
           "task_controller.evaluate", footer="Eval"),
    Action("predict", "Tasks", "Prediction", "p", "confusion matrix on the test set", "task_controller.predict",
           footer="Predict"),
    Action("predict_tta", "Tasks", "Prediction with TTA", "E", "the confusion matrix with test-time augmentation "
           "(shifted and, where flips are on, mirrored views averaged), its figures beside the plain ones",
           "task_controller.predict_with_tta"),
    Action("tune", "Tasks", "Tuning", "u", "grid search over every csv hyper field", "task_controller.tune",
           footer="Tune"),
    Action("tune_options", "Tasks", "Tuning with options…", "U",
           "choose the strategy (grid, hyperband, random) and median pruning, then search",
           "task_controller.tune_with_options"),
    Action("lr_find", "Tasks", "Learning-rate finder", "f",
           "sweep the rate from 1e-7 until the loss explodes: its curve and a suggested init_rate (a run)",
           "task_controller.lr_find"),
    Action("apply_rate", "Tasks", "Apply the suggested rate", "A",
           "the learning-rate finder's suggestion as init_rate (written into the hyper params file)",
           "params.apply_rate"),
    Action("skip_fit", "Tasks", "Skip the running fit", "j",
           "tuning: end the fit that is training now (recorded as pruned) and go on with the next",
           "task_controller.skip_fit"),
    Action("stop", "Tasks", "Stop", "x", "stop training, tuning or loading after the current batch",
           "task_controller.stop", footer="Stop"),
    Action("apply_best", "Tasks", "Apply best tuning params", "b", "put the best combination into the hyper params",
           "params.apply_best"),
    Action("top_losses", "Tasks", "Top losses…", "T", "the most confidently wrong test images and the most confused "
           "classes (Enter on a confusion-matrix cell lists its images)", "inspect.top_losses"),
    Action("inspect_image", "Tasks", "Inspect an image…", "I", "Grad-CAM heatmap and feature maps of an image file "
           "with the loaded model (Enter in an image list does it too)", "inspect.choose_image"),
    # Help menu
    Action("about", "Help", "About", "a", "version, backend, device, where the docs are", "show_about"),
    Action("keys", "Help", "Keys", "question_mark", "every key at a glance", "show_keys", footer="Keys", show_key="?"),
    Action("snap", "Help", "Snap", "c", "save an SVG screenshot into the current run's folder", "snap"),
)

BY_NAME: dict[str, Action] = {}
for _action in ACTIONS:
    BY_NAME.setdefault(_action.name, _action)

# Views of the content area, switched with the number keys.
VIEWS = (
    ("data", "Data", "1"),
    ("model", "Model", "2"),
    ("training", "Training", "3"),
    ("evaluation", "Evaluation", "4"),
    ("tuning", "Tuning", "5"),
    ("log", "Log", "6"),
    ("runs", "Runs", "7"),  # also an action (App menu, palette): the same key
)


def menu_items(menu: str) -> list[Action]:
    return [a for a in ACTIONS if a.menu == menu]
