"""Commands that look inside a model and its mistakes: ``explain`` (a Grad-CAM heatmap of an image),
``features`` (the feature maps of every convolution) and ``predict --mistakes N``.

Images are drawn in the terminal with coloured half blocks (two pixels a cell, any terminal, any SSH
connection) when stdout is a terminal; the figures are saved as PNG in any case.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_tui.core.errors import UserError

if TYPE_CHECKING:  # the parser is built from here too: nothing heavy before a command runs
    from cnn_tui.cli.console import CliConsole  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help

Args = argparse.Namespace
IMAGE_COLUMNS = 40  # cells an image is drawn across (half blocks: as many pixels, twice the rows)


def add_commands(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """The parsers of ``explain`` and ``features``, and ``predict --mistakes``."""
    sub.choices["predict"].add_argument(
        "--mistakes", type=_at_least_one, metavar="N",
        help="also print the N most confidently wrong test images (highest loss first)")
    p = command("explain", "a Grad-CAM heatmap of where an image made the model choose its class",
                cache=False, epilog=EXPLAIN_EPILOG)
    p.add_argument("--model", required=True, metavar="M.keras", help="a model saved by cnn-tui (or any Keras image classifier)")
    p.add_argument("image", metavar="IMAGE", help="an image file (read as classify reads it)")
    p.add_argument("--class", dest="explained", metavar="NAME", help="the class to explain (default: the predicted one)")
    p.add_argument("--method", choices=("hirescam", "gradcam"), default="hirescam",
                   help="per-position gradients (hirescam, default) or channel-averaged ones (gradcam)")
    p.add_argument("--out", metavar="PNG", help=OUT_HELP.format(name="gradcam-FOLDER-IMAGE-HASH.png"))
    p = command("features", "the feature maps of every convolution for one image, with its predicted class",
                cache=False, epilog=FEATURES_EPILOG)
    p.add_argument("--model", required=True, metavar="M.keras", help="a model saved by cnn-tui (or any Keras image classifier)")
    p.add_argument("image", metavar="IMAGE", help="an image file (read as classify reads it)")
    p.add_argument("--out", metavar="PNG", help=OUT_HELP.format(name="features-FOLDER-IMAGE-HASH.png"))


OUT_HELP = "where to save the figure (default: {name} in the model's run folder, else in the current folder)"
EXPLAIN_EPILOG = """The heatmap is taken over the network's last image-shaped layer (what it pools or flattens);
red is where the image raised the class's score most. hirescam keeps the gradient of each position
(right for networks that flatten, like the seed CNN), gradcam averages it per channel (the original;
the same for networks that pool globally)."""
FEATURES_EPILOG = """One grid per convolution, in the order the network runs them (nested backbones included);
each channel is scaled on its own, bright where that filter responds. The PNG shows up to 32 channels
a layer (the most active), the terminal up to 16."""


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# ---------------------------------------------------------------- drawing in the terminal


class HalfBlocks:
    """A Rich renderable: an RGB float image in [0, 1] as upper half blocks, two pixel rows a line."""

    def __init__(self, pixels: Any, columns: int = IMAGE_COLUMNS) -> None:
        import numpy as np  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help
        from PIL import Image  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help

        data = np.asarray(pixels, dtype=np.float32)
        if data.ndim == 2:
            data = data[..., None]
        if data.shape[-1] == 1:
            data = np.repeat(data, 3, axis=-1)
        data = np.nan_to_num(data, nan=0.15)  # the gaps of a grid: dark grey
        height, width = data.shape[:2]
        columns = max(1, columns)
        rows = max(2, round(height * columns / width / 2) * 2)
        image = Image.fromarray((np.clip(data, 0, 1) * 255).astype(np.uint8), mode="RGB")
        resample = Image.Resampling.NEAREST if columns >= width else Image.Resampling.BOX
        self.pixels = np.asarray(image.resize((columns, rows), resample))

    def __rich_console__(self, console: Any, options: Any) -> Iterable[Any]:
        from rich.segment import Segment  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help
        from rich.style import Style  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help

        for top in range(0, self.pixels.shape[0], 2):
            for upper, lower in zip(self.pixels[top], self.pixels[top + 1]):
                yield Segment("▀", Style(color=f"rgb({upper[0]},{upper[1]},{upper[2]})",
                                         bgcolor=f"rgb({lower[0]},{lower[1]},{lower[2]})"))
            yield Segment.line()


def _draws(console: CliConsole) -> bool:
    return not console.json_mode and console.out.is_terminal


def _draw(console: CliConsole, *renderables: Any) -> None:
    """Images side by side, each with its caption above it."""
    from rich.table import Table  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help

    grid = Table.grid(padding=(0, 2))
    for _ in renderables:
        grid.add_column()
    grid.add_row(*renderables)
    console.out.print(grid)


def _captioned(caption: str, pixels: Any, columns: int = IMAGE_COLUMNS) -> Any:
    from rich.console import Group  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help
    from rich.text import Text  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help

    from cnn_tui.core.fileio import readable  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help

    return Group(Text(readable(caption), style="bold"), HalfBlocks(pixels, columns))


# ---------------------------------------------------------------- where figures go


def figure_path(out: str | None, model: Path, image: str | Path, prefix: str) -> Path:
    """``--out`` when given; else ``PREFIX-FOLDER-IMAGE-HASH.png`` (``explain_plots.figure_name``) in the
    model's run folder (a folder with run.json),
    else in the current folder (never beside the image: a PNG in a class folder would become data)."""
    if out:
        path = Path(out)
        if path.is_dir():
            raise UserError("is a folder; --out names the PNG file to write", path=path)
        return path
    folder = model.resolve().parent
    if not (folder / "run.json").is_file():
        folder = Path.cwd()
    from cnn_tui.core.inspect.explain_plots import figure_name  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help

    return folder / figure_name(prefix, image)


def _load(args: Args) -> tuple[Any, Any]:
    from cnn_tui.core.inspect.explain import load_image  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help
    from cnn_tui.core.models.model import NetModel  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help

    net = NetModel.load(args.model)
    return net, load_image(args.image, net)


def _top(probabilities: Any, names: list[str], k: int = 3) -> list[tuple[str, float]]:
    import numpy as np  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help

    best = np.argsort(-probabilities, kind="stable")[: min(k, len(names))]
    return [(names[i], float(probabilities[i])) for i in best]


# ---------------------------------------------------------------- explain


def cmd_explain(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    from cnn_tui.cli.console import make_table  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help
    from cnn_tui.core.inspect import explain, explain_plots  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help

    net, pixels = _load(args)
    path = figure_path(args.out, Path(args.model), args.image, "gradcam")
    cam = explain.grad_cam(net, pixels, args.explained, method=args.method)
    top = _top(cam.probabilities, cam.class_names)
    console.table(make_table(f"Prediction for {args.image}", ["class", "probability"],
                             [(name, f"{p:.2%}") for name, p in top], right=[1]))
    label = explain.method_label(cam.method)
    h, w = cam.heatmap.shape
    console.line(f"{label} of class {cam.explained} over layer {cam.layer} ({h}×{w})")
    if not cam.heatmap.any():
        console.line(f"the heatmap is empty: nothing at {cam.layer} raised the score of {cam.explained}"
                     + (" (a 1×1 map: use larger images to see where)" if h * w == 1 else ""))
    if _draws(console):
        size = max(cam.image.shape[0], 4 * IMAGE_COLUMNS // 2)
        _draw(console, _captioned("image", cam.image), _captioned(f"{label}: {cam.explained}", explain.overlay(cam, size)))
    explain_plots.plot_grad_cam(cam, path, Path(args.image).name)
    console.line(f"saved {path}")
    return {"model": args.model, "image": args.image, "predicted": cam.predicted, "top": top,
            "explained": cam.explained, "method": cam.method, "layer": cam.layer,
            "heatmap": [[round(float(v), 4) for v in row] for row in cam.heatmap], "png": str(path)}


# ---------------------------------------------------------------- features


TERMINAL_CHANNELS = 16


def cmd_features(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    from cnn_tui.cli.console import make_table  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help
    from cnn_tui.core.inspect import explain, explain_plots  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help

    net, pixels = _load(args)
    path = figure_path(args.out, Path(args.model), args.image, "features")
    features = explain.feature_maps(net, pixels)
    console.line(f"{args.image}: predicted {features.predicted} ({features.probability:.2%})")
    if _draws(console):
        _draw(console, _captioned("image", features.image, 16))
    rows = []
    for fmap in features.maps:
        if stop.is_set():
            break
        h, w, c = fmap.activations.shape
        rows.append((fmap.layer, fmap.kind, f"{h}×{w}", c))
        if _draws(console) and h * w > 1:  # a 1×1 output is one number a channel, no picture
            grid, shown = explain.mosaic(fmap.activations, max_channels=TERMINAL_CHANNELS, columns=8)
            what = f"{c} channels" if len(shown) == c else f"{len(shown)} most active of {c} channels"
            width = min(console.out.width - 2, max(grid.shape[1], 8 * 8))
            _draw(console, _captioned(f"{fmap.layer} ({fmap.kind}) · {h}×{w} · {what}", grid, width))
    console.table(make_table("Convolutions", ["layer", "type", "size", "channels"], rows, right=[3]))
    explain_plots.plot_features(features, path, Path(args.image).name)
    console.line(f"saved {path}")
    return {"model": args.model, "image": args.image, "predicted": features.predicted,
            "probability": features.probability,
            "layers": [{"layer": r[0], "kind": r[1], "height": int(m.activations.shape[0]),
                        "width": int(m.activations.shape[1]), "channels": m.channels}
                       for r, m in zip(rows, features.maps)],
            "png": str(path)}


# ---------------------------------------------------------------- predict --mistakes


def print_mistakes(console: CliConsole, evaluation: Any, count: int) -> dict[str, Any]:
    """The ``count`` most confidently wrong test images and the most confused pairs, printed; the result."""
    from cnn_tui.cli.console import make_table  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help
    from cnn_tui.core.inspect import mistakes  # noqa: PLC0415 — built into the parser: this loads only when the command runs, not for --help

    top = mistakes.top_losses(evaluation, count)
    root = _common_folder(evaluation.files)
    rows = [(_relative(e.file, root), e.true, e.predicted, f"{e.probability:.2%}", f"{e.loss:.3f}",
             ", ".join(f"{name} {p:.1%}" for name, p in e.top)) for e in top]
    wrong = int((evaluation.y_pred != evaluation.y_true).sum())
    if not top:  # a perfect model: a sentence, not an empty table of "0 of 0"
        console.line(f"no mistakes: all {len(evaluation.y_true)} test images are predicted right")
    else:
        title = f"Most confident mistakes ({len(top)} of {wrong}" + (f", images in {root})" if root else ")")
        console.table(make_table(title, ["image", "true", "predicted", "probability", "loss", "top 3"], rows,
                                 right=[3, 4]))
    pairs = mistakes.most_confused(evaluation, limit=min(count, 10))
    if pairs:
        console.table(make_table("Most confused (true → predicted)", ["true", "predicted", "images", "of the true class"],
                                 [(p.true, p.predicted, p.count, f"{p.share:.1%}") for p in pairs], right=[2, 3]))
    return {"mistakes": [{"file": e.file, "true": e.true, "predicted": e.predicted, "probability": e.probability,
                          "loss": e.loss, "top": [list(t) for t in e.top]} for e in top],
            "most_confused": [p.__dict__ for p in pairs]}


def _common_folder(files: list[str]) -> str:
    """The folder every test image is in (the test folder), so the table shows class/file names."""
    try:
        folder = os.path.commonpath([os.path.dirname(f) for f in files]) if files else ""
    except ValueError:  # relative and absolute paths mixed
        return ""
    return os.path.dirname(folder) if len({os.path.dirname(f) for f in files}) == 1 else folder


def _relative(file: str, root: str) -> str:
    return os.path.relpath(file, root) if root else file
