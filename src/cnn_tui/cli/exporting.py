"""``cnn-tui export``: a saved model as a TensorFlow SavedModel, ONNX or LiteRT file, checked
against the Keras model on the test folder (``--data``) or a built-in sample."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from cnn_tui.cli.commands import Args, _load_params
from cnn_tui.cli.console import CliConsole
from cnn_tui.core.data.dataset import load_data
from cnn_tui.core.errors import UserError
from cnn_tui.core.models import export
from cnn_tui.core.models.model import NetModel, readable_size


def cmd_export(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    export.check_available(args.format)  # a missing package: one line, before anything is loaded
    out = Path(args.out) if args.out else export.default_path(args.model, args.format)
    export.check_out(out, args.format)
    net = NetModel.load(args.model)
    images, source = None, ""
    if args.data:
        images, source = _test_images(args, console, net)
    console.info(f"exporting {args.model} to {args.format}…")
    done = export.export_and_check(net, args.format, out, images, source)
    console.line(f"exported {export.FORMATS[args.format][1]} to {done.path} "
                 f"({readable_size(done.size_bytes)}) in {done.seconds:.1f}s")
    console.line(f"parity with the Keras model: {done.parity.line()} ({done.parity.source})")
    if net.threshold is not None:  # a graph gives probabilities; the decision rule is the caller's
        console.line(f"the export gives probabilities; the model's threshold ({net.threshold.describe()}) is in "
                     f"{args.model}'s metadata (cnn_tui.json): apply it to them")
    if not done.parity.ok:
        console.warn(f"the exported model agrees with the Keras model on only {done.parity.agreement:.2%} of the "
                     f"images (less than {export.AGREEMENT_FLOOR:.1%}): it does not predict what the model does")
    return {"model": str(args.model), **done.as_dict()}


def _test_images(args: Args, console: CliConsole, net: NetModel) -> tuple[Any, str]:
    data, _ = _load_params(args, console, hyper=False)
    with console.progress("loading the test folder"):
        # the test folder, or a labels CSV's test rows, at the model's size and channels
        images = load_data(data.with_values(image_size=net.image_size), "test", channels=net.channels,
                           emit=console.emit)
    if len(images) == 0:
        raise UserError("the test folder has no readable images", path=data.test_path)
    return images.x, f"test folder {data.test_path}"
