"""The Data view: the params in use, and per loaded dataset its class counts, skipped files
and sample images. The hyper params list what tells the configuration apart (``hyper_block``),
in the form's sections."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from cnn_tui.core.params.fields import DATA_FIELDS, HYPER_FIELDS, HYPER_GROUPS, SEED_NAMES, format_text
from cnn_tui.tui.widgets.images import SampleGrid
from cnn_tui.tui.widgets.progress import ProgressRow
from cnn_tui.tui.widgets.tables import (
    counts_table,
    display_path,
    key_values,
    params_table,
    shown,
)

DATA_LABELS = {f.name: f.label for f in DATA_FIELDS}
HYPER_LABELS = {f.name: f.label for f in HYPER_FIELDS}
SKIPPED_SHOWN = 8
HEALTH_SHOWN = 12  # findings listed in the Data view (the CLI's check lists all)


def hyper_block(hyper: Any, title: str) -> Group:
    """The hyper params that tell this configuration apart, under the form's section names: the
    architecture (dim at its default), the seed's ten fields (a seed file shows all of its own), and
    any other field away from its default. Fields the configuration does not use (momentum with
    adam, a backbone's weights with cnn) are left out, so a complete preset file is a dozen rows,
    not the table's thirty-odd."""
    rows: list[tuple[str, Any]] = []
    for group in HYPER_GROUPS:
        names = [f.name for f in HYPER_FIELDS if f.group == group and hyper.shown(f.name) and (
            f.name == "architecture" or f.name in SEED_NAMES or hyper.value(f.name) != f.scalar_default)]
        if not names:
            continue
        rows.append((Text(group.capitalize(), style="bold not dim"), Text("")))
        for name in names:
            value = Text(format_text(hyper.value(name)), style="" if name in hyper.values else "dim")
            rows.append((HYPER_LABELS[name], value))
    combos = hyper.combination_count()
    note = f"{combos} tuning combination{'s' if combos != 1 else ''}\nunlisted: default or unused"
    return Group(Text(title, style="bold", overflow="ellipsis", no_wrap=True), key_values(rows),
                 Text(note, style="italic dim"))


class DatasetPanel(Vertical):
    """One dataset: a heading, counts per class, skipped files, samples."""

    def __init__(self, what: str, key: str) -> None:
        super().__init__(id=f"{what}-panel", classes="dataset-panel")
        self.what = what
        self.key = key

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.what.capitalize()} set: not loaded (press {self.key})", style="dim"),
                     classes="dataset-heading")
        counts = Static("", classes="dataset-counts")
        counts.display = False
        yield counts
        yield SampleGrid(classes="samples")

    async def show(self, images: Any) -> None:
        heading = self.query_one(".dataset-heading", Static)
        counts = self.query_one(".dataset-counts", Static)
        counts.display = images is not None
        if images is None:
            heading.update(Text(f"{self.what.capitalize()} set: not loaded (press {self.key})", style="dim"))
            counts.update("")
            await self.query_one(SampleGrid).show(None)
            return
        heading.update(Text.assemble(
            (f"{self.what.capitalize()} set ", "bold"),
            f"{len(images):,} images · {images.num_classes} classes · "
            f"{images.image_size}×{images.image_size}×{images.channels}",
        ))
        # where the pixels came from, on a line of its own: at the end of the heading it wrapped alone
        # in a half-width panel at 120 columns
        source = "read from the cache" if images.from_cache else "decoded from the image files"
        parts: list[Any] = [Text(source, style="dim"), counts_table(images.class_names, images.counts())]
        if images.skipped:
            lines = Text(f"skipped {len(images.skipped)} unreadable file(s):\n", style="yellow")
            for item in images.skipped[:SKIPPED_SHOWN]:
                lines.append(f"  {shown(item.path)}: {item.reason}\n", style="yellow")
            if len(images.skipped) > SKIPPED_SHOWN:
                more = len(images.skipped) - SKIPPED_SHOWN
                lines.append(f"  … and {more} more (skipped_files.csv in the run folder)\n")
            parts.append(lines)
        for note in images.notes:
            if not note.startswith("skipped"):
                parts.append(Text(note, style="yellow"))
        counts.update(Group(*parts))
        await self.query_one(SampleGrid).show(images)


class DataView(VerticalScroll):
    def compose(self) -> ComposeResult:
        with Horizontal(id="params-row"):
            yield Static(id="data-params", classes="params-block")
            yield Static(id="hyper-params", classes="params-block")
        yield ProgressRow("Loading", id="load-progress")
        with Horizontal(id="datasets"):
            yield DatasetPanel("training", "l")
            yield DatasetPanel("test", "L")
        yield Static("", id="data-health")  # shown once a check has run (H)

    def on_mount(self) -> None:
        self.show_params(None, None)
        self.query_one("#load-progress").display = False
        self.query_one("#data-health").display = False

    shown: tuple[Any, Any] | None = None

    def show_params(self, data: Any, hyper: Any) -> None:
        # called on every change of state: the same (frozen) params are not laid out again
        if self.shown is not None and self.shown == (data, hyper):
            return
        self.shown = (data, hyper)
        block = self.query_one("#data-params", Static)
        if data is None:
            block.update(Text("Data params: none — o to load, n for a new set", style="dim"))
        else:
            # a field unused unless given (labels_csv, val_dir, groups ...) shows only when it is
            values = {f.name: getattr(data, f.name) for f in DATA_FIELDS
                      if f.required or f.default != "" or getattr(data, f.name)}
            if data.result_dir is None:
                values["result_dir"] = "results (default)"
            block.update(params_table(values, DATA_LABELS,
                                      f"Data params · {data.source.name if data.source else 'unsaved'}"))
        block = self.query_one("#hyper-params", Static)
        if hyper is None:
            block.update(Text("Hyper params: none — O to load, N for the defaults", style="dim"))
        else:
            block.update(hyper_block(hyper, f"Hyper params · {hyper.source.name if hyper.source else 'unsaved'}"))

    def show_loading(self, what: str, done: int, total: int, speed: float) -> None:
        row = self.query_one("#load-progress", ProgressRow)
        row.display = True
        detail = f"{what}: {done:,} of {total:,} files" + (f" · {speed:,.0f} images/s" if speed else "")
        row.set(done, total, detail)

    def hide_loading(self) -> None:
        self.query_one("#load-progress").display = False

    async def show_set(self, which: str, images: Any) -> None:
        panel = self.query_one(f"#{which}-panel", DatasetPanel)
        await panel.show(images)
        if images is not None:
            # the counts, not the params, matter now
            self.call_after_refresh(self.scroll_to_widget, panel, top=True, animate=False)

    def show_health(self, report: Any) -> None:
        """The data-health section: each set's facts, then one line per finding (the first few)."""
        lines = Text()
        lines.append("Data health ", style="bold")
        if report.ok:
            lines.append("no problems found\n", style="green")
        else:
            lines.append(f"{len(report.findings)} problem(s)\n", style="yellow")
        for health in report.sets:
            size = f"{health.usual_size[0]}×{health.usual_size[1]}" if health.usual_size else "-"
            mode = "colour" if health.colour * 2 > health.readable else "grayscale"
            lines.append(f"  {health.what} ({display_path(health.root)}): {health.images:,} images · "
                         f"{len(health.class_names)} classes · "
                         f"imbalance {health.imbalance:.2f} · usually {size} {mode} · "
                         f"{health.unreadable} unreadable\n")
        for finding in report.findings[:HEALTH_SHOWN]:
            lines.append(f"  {shown(finding.message)}\n", style="yellow")
        if len(report.findings) > HEALTH_SHOWN:
            lines.append(f"  … and {len(report.findings) - HEALTH_SHOWN} more (cnn-tui check --data D.json "
                         "lists them all)\n")
        section = self.query_one("#data-health", Static)
        section.update(lines)
        section.display = True
