"""The terminal UI (Textual). ``run_tui`` starts it; nothing here is imported by ``core``."""

from cnn_tui.tui.launch import run_tui

__all__ = ["run_tui"]
