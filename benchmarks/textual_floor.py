"""The floor for the start-up benchmark: the smallest Textual app that shows what the
benchmark waits for (a header, one line of text, a footer with a few keys), started the
same way. No Textual app can draw its first frame faster on the same machine."""

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static


class FloorApp(App):
    BINDINGS = [("q", "quit", "Quit"), ("l", "bell", "Load"), ("t", "bell", "Train"), ("e", "bell", "Evaluate")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Data params")
        yield Footer()


if __name__ == "__main__":
    FloorApp().run()
