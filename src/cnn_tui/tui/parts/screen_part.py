"""What every object the main screen is composed of starts from: the screen, its session, and
a way to say something on the status line."""

from __future__ import annotations

from typing import Any


class ScreenPart:
    def __init__(self, screen: Any) -> None:
        self.screen = screen

    @property
    def session(self) -> Any:
        return self.screen.session

    def say(self, text: str, level: str = "info") -> None:
        self.screen.say(text, level)
