"""Error analysis and a look inside the model, as screens over the main one.

* ``MistakesScreen`` lists test images (a confusion-matrix cell's, or the top losses with the most
  confused pairs): each row's image, classes and probabilities beside the list; Enter inspects it.
* ``ImageScreen`` shows one image inspected: its prediction, Grad-CAM heatmaps laid over it (the
  predicted class, and the true one when it differs) and the feature maps of every convolution.

Images are drawn with textual-image (``widgets.images``), like the Data view's samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from cnn_tui.tui import terminal
from cnn_tui.tui.widgets.images import image_class
from cnn_tui.tui.widgets.tables import display_path, reset, right, shown

PREVIEW_WIDTH = 24  # cells: a test image beside the list
CAM_WIDTH = 24
PREDICTION_WIDTH = 34  # the top classes with their bars, and where the PNGs went
MAP_CHANNELS = 16  # channels a layer shows on screen (the most active); the PNG has up to 32
MAP_COLUMNS = 8

DIALOG_CSS = """
{name} {{
    align: center middle;
    background: $background 60%;
}}
{name} .inspect-dialog {{
    width: 100%;
    height: 100%;
    border: round $accent;
    background: $surface;
    padding: 0 1;
}}
{name} .inspect-title {{
    width: 1fr;
    height: auto;
    text-style: bold;
    color: $accent;
}}
{name} .inspect-note {{
    height: auto;
    color: $text-muted;
}}
"""


def _pil(pixels: Any) -> Any:
    """A float [0, 1] image (h, w), (h, w, 1) or (h, w, 3) as a PIL image; NaN (grid gaps) dark grey."""
    import numpy as np  # noqa: PLC0415 — numpy is not loaded before a task needs it (the first frame, --help)
    from PIL import Image  # noqa: PLC0415 — Pillow is not loaded before an image is read (the first frame, --help)

    data = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.15)
    data = (np.clip(data, 0, 1) * 255).astype(np.uint8)
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    return Image.fromarray(data, mode="L" if data.ndim == 2 else "RGB")


def _picture(image: Any, width: int, widget: Any, note: str = "") -> Any:
    """An image widget ``width`` cells wide (its height follows), or a line saying there are no previews."""
    if widget is None:
        return Label(Text(note or "(no image preview in this terminal)", style="dim"), classes="inspect-note")
    # a fixed size (as the sample cards have): an "auto" height left the picture empty; cells are
    # about twice as tall as wide, which is what half blocks draw (two pixel rows a cell)
    cell_width, cell_height = terminal.GRAPHICS.cell_size if terminal.GRAPHICS else (10, 20)
    picture = widget(image, classes="inspect-picture")
    picture.styles.width = width
    picture.styles.height = max(1, round(width * image.height / image.width * cell_width / cell_height))
    return picture


def _open_file(path: str) -> Any:
    """The test image as the person has it (not resized); None when it cannot be read any more."""
    from PIL import Image  # noqa: PLC0415 — Pillow is not loaded before an image is read (the first frame, --help)

    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB" if image.mode not in ("L", "1", "I;16", "I", "F") else "L")
    except (OSError, ValueError):
        return None


def probability_bars(top: Sequence[tuple[str, float]], true: str | None, width: int = 16) -> Text:
    """One line a class: its name, a bar and its probability; the true class green, a wrong best red."""
    text = Text()
    names = [shown(name) for name, _ in top]
    room = min(12, max((len(n) for n in names), default=1))
    for (name, p), label in zip(top, names):
        label = label if len(label) <= room else label[: room - 1] + "…"
        style = "green" if name == true else ("red" if true is not None and p == top[0][1] else "")
        text.append(f"{label:>{room}} ", style="bold" if name == true else "")
        text.append(f"{'█' * max(1, round(p * width)):<{width}}", style=style)
        text.append(f" {p:6.1%}\n")
    return text


# ---------------------------------------------------------------- a list of test images


class MistakesScreen(ModalScreen[None]):
    """Test images with their classes and probabilities; the highlighted one is drawn beside the list.
    Enter inspects it (Grad-CAM, feature maps); Escape closes."""

    DEFAULT_CSS = DIALOG_CSS.format(name="MistakesScreen") + """
    MistakesScreen #mistakes-body { height: 1fr; }
    MistakesScreen #mistakes-table { width: auto; max-width: 65%; height: 1fr; }
    MistakesScreen #mistakes-side { width: 1fr; min-width: 30; height: 1fr; padding: 0 0 0 1; }
    MistakesScreen #confused-table { height: auto; max-height: 12; }
    MistakesScreen #mistake-picture { height: auto; }
    MistakesScreen #mistake-details { height: auto; }
    """

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, examples: Sequence[Any], *, root: str = "", confused: Sequence[Any] = (),
                 inspect: Callable[[str, str | None], bool] | None = None, note: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.examples = list(examples)
        self.root = root  # the folder the files are shown relative to
        self.confused = list(confused)
        self.inspect = inspect
        self.note = note
        self.widget: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="inspect-dialog"):
            yield Label(Text(shown(self.title_text)), classes="inspect-title", id="mistakes-title")
            yield Label(self.hint(), classes="inspect-note", id="mistakes-note")
            with Horizontal(id="mistakes-body"):
                yield DataTable(id="mistakes-table", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="mistakes-side"):
                    yield Vertical(id="mistake-picture")
                    yield Static("", id="mistake-details")
                    if self.confused:
                        yield Label(Text("Most confused (true → predicted)", style="bold"))
                        yield DataTable(id="confused-table", cursor_type="none", zebra_stripes=True)

    def on_mount(self) -> None:
        self.widget = image_class()
        table = self.query_one("#mistakes-table", DataTable)
        # short headers: at 80 columns the list and the image share the width
        reset(table, ["#", "image", "true", "pred", ("prob", "p"), ("loss", "loss")], left=4)
        for rank, e in enumerate(self.examples, start=1):
            table.add_row(right(rank), Text(shown(self.relative(e.file))), Text(shown(e.true)),
                          Text(shown(e.predicted), style="" if e.correct else "red"),
                          right(f"{e.probability:.1%}"), right(f"{e.loss:.3f}"), key=str(rank - 1))
        if self.confused:
            pairs = self.query_one("#confused-table", DataTable)
            reset(pairs, ["true", "predicted", ("images", "count"), ("share", "share")], left=2)
            for p in self.confused:
                pairs.add_row(Text(shown(p.true)), Text(shown(p.predicted)), right(p.count), right(f"{p.share:.0%}"))
        table.focus()
        if self.examples:
            self.show_example(0)
        else:
            self.query_one("#mistake-details", Static).update(Text("no images here", style="dim"))

    def hint(self) -> Text:
        return Text(self.note or "↑↓ moves · Enter: Grad-CAM and feature maps of the image · Esc closes")

    def on_screen_resume(self) -> None:  # back from the image screen
        self.query_one("#mistakes-note", Label).update(self.hint())

    def relative(self, file: str) -> str:
        if self.root:
            try:
                return str(Path(file).relative_to(self.root))
            except ValueError:
                pass
        return display_path(file)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "mistakes-table" and event.row_key.value is not None:
            self.show_example(int(event.row_key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "mistakes-table" and self.inspect is not None and event.row_key.value is not None:
            example = self.examples[int(event.row_key.value)]
            if self.inspect(example.file, example.true):
                # the main screen's status line is hidden under this one: say here that it is under way
                self.query_one("#mistakes-note", Label).update(
                    Text(shown(f"inspecting {self.relative(example.file)}…"), style="bold"))

    def show_example(self, index: int) -> None:
        e = self.examples[index]
        box = self.query_one("#mistake-picture", Vertical)
        box.remove_children()
        image = _open_file(e.file)
        if image is None:
            box.mount(Label(Text("the file cannot be read any more", style="red")))
        else:
            box.mount(_picture(image, PREVIEW_WIDTH, self.widget))
        details = Text()
        details.append(f"{shown(self.relative(e.file))}\n", style="bold")
        details.append("true ", style="dim")
        details.append(f"{shown(e.true)}   ")
        details.append("predicted ", style="dim")
        details.append(f"{shown(e.predicted)}\n", style="" if e.correct else "bold red")
        details.append("loss ", style="dim")
        details.append(f"{e.loss:.3f}   ")
        details.append(f"p(true) {e.true_probability:.1%}\n")
        details.append_text(probability_bars(e.top, e.true))
        self.query_one("#mistake-details", Static).update(details)

    def action_close(self) -> None:
        self.dismiss(None)


# ---------------------------------------------------------------- one image inspected


@dataclass
class Inspection:
    """What the model makes of one image: its prediction, heatmaps, feature maps and the PNGs saved."""

    path: str
    true: str | None
    features: Any  # core.inspect.explain.Features
    cams: list[Any]  # core.inspect.explain.GradCam, the predicted class first
    files: dict[str, Path] = field(default_factory=dict)


def inspect_image(net: Any, path: str, true: str | None, folder: Path) -> Inspection:
    """Compute everything the image screen shows and save its two PNGs in ``folder`` (a worker thread)."""
    from cnn_tui.core.inspect import explain, explain_plots  # noqa: PLC0415 — numpy, matplotlib: in the worker only

    pixels = explain.load_image(path, net)
    features = explain.feature_maps(net, pixels)
    cams = [explain.grad_cam(net, pixels)]
    if true is not None and true in net.class_names and true != cams[0].predicted:
        cams.append(explain.grad_cam(net, pixels, true))
    name = Path(path).name
    files = {"gradcam": explain_plots.plot_grad_cam(cams, folder / explain_plots.figure_name("gradcam", path), name),
             "features": explain_plots.plot_features(features, folder / explain_plots.figure_name("features", path), name)}
    return Inspection(path, true, features, cams, files)


class ImageScreen(ModalScreen[None]):
    """One image: prediction, Grad-CAM over it, the feature maps of each convolution; Escape closes."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ImageScreen") + """
    ImageScreen #image-scroll { height: 1fr; }
    ImageScreen #image-top { height: auto; }
    ImageScreen .image-panel { width: auto; height: auto; padding: 0 2 0 0; }
    ImageScreen #image-prediction { width: 1fr; height: auto; }
    ImageScreen .layer-title { margin: 1 0 0 0; }
    """

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, inspection: Inspection) -> None:
        super().__init__()
        self.inspection = inspection

    def compose(self) -> ComposeResult:
        from cnn_tui.core.inspect import explain  # noqa: PLC0415 — numpy: imported by the worker already, not at start-up

        ins = self.inspection
        features = ins.features
        widget = image_class()
        title = f"{display_path(ins.path)}: predicted {features.predicted} ({features.probability:.1%})"
        if ins.true is not None:
            title += f" · true class {ins.true}"
        with Vertical(classes="inspect-dialog"):
            yield Label(Text(shown(title)), classes="inspect-title", id="image-title")
            yield Label(Text("↑↓ PgUp PgDn scroll · Esc closes"), classes="inspect-note")
            # the image and its heatmaps side by side, the prediction beside them where the width allows
            # (under them at 80 columns)
            room, panels = self.app.size.width - 6, 1 + len(ins.cams)
            beside = room >= panels * (CAM_WIDTH + 2) + PREDICTION_WIDTH
            cell = CAM_WIDTH if beside else max(10, min(CAM_WIDTH, room // panels - 2))
            with VerticalScroll(id="image-scroll"):
                with Horizontal(id="image-top"):
                    with Vertical(classes="image-panel"):
                        yield Label(Text("image", style="bold"))
                        yield _picture(_pil(features.image), cell, widget)
                    for cam in ins.cams:
                        with Vertical(classes="image-panel"):
                            yield Label(Text(shown(f"{explain.method_label(cam.method)}: {cam.explained}"),
                                             style="bold", overflow="ellipsis", no_wrap=True))
                            size = max(cam.image.shape[0], 2 * cell)
                            yield _picture(_pil(explain.overlay(cam, size)), cell, widget)
                    if beside:
                        yield Static(self.prediction_text(), id="image-prediction")
                if not beside:
                    yield Static(self.prediction_text(), id="image-prediction")
                pictures, points = features.drawn()
                for fmap in pictures:
                    grid, chosen = explain.mosaic(fmap.activations, max_channels=MAP_CHANNELS, columns=MAP_COLUMNS)
                    h, w, c = fmap.activations.shape
                    what = f"{c} channels" if len(chosen) == c else f"the {len(chosen)} most active of {c} channels"
                    yield Label(Text(shown(f"{fmap.layer} ({fmap.kind}) · {h}×{w} · {what}"), style="bold"),
                                classes="layer-title")
                    yield _picture(_pil(grid), max(8, min(grid.shape[1] * 2, 96, room - 2)), widget)
                if points:
                    names = ", ".join(m.layer for m in points)
                    yield Label(Text(shown(f"1×1 outputs, not drawn: {names}"), style="dim"), classes="layer-title")

    def prediction_text(self) -> Text:
        ins = self.inspection
        features = ins.features
        order = features.probabilities.argsort()[::-1][:5]
        top = [(features.class_names[int(i)], float(features.probabilities[int(i)])) for i in order]
        text = probability_bars(top, ins.true)
        layer = ins.cams[0].layer if ins.cams else ""
        text.append(f"\nheatmap over {shown(layer)}\n", style="dim")
        for cam in ins.cams:
            if not cam.heatmap.any():
                text.append(f"empty for {shown(cam.explained)}: nothing there raised its score\n", style="yellow")
        if ins.files:
            folder = next(iter(ins.files.values())).parent
            text.append("saved in ", style="dim")
            text.append(f"{display_path(folder)}\n")
            for path in ins.files.values():
                text.append(f"  {shown(path.name)}\n")
        return text

    def action_close(self) -> None:
        self.dismiss(None)
