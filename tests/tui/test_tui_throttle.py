"""Progress reaches the widgets at most ~10 times a second, and never through a zero-delay timer (Textual 8's
Timer divides by its interval when it starts late: a set_timer(0) could die and freeze the progress)."""

from __future__ import annotations

import asyncio

from textual.app import App

from cnn_tui.tui.throttle import MIN_DELAY, ProgressThrottle


class Owner:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def set_timer(self, delay, callback):
        self.delays.append(delay)
        return type("T", (), {"stop": lambda self: None})()


def test_the_first_update_after_a_quiet_spell_is_not_a_zero_delay_timer():
    owner, shown = Owner(), []
    throttle = ProgressThrottle(owner, shown.append)
    throttle.offer("batch", 1)
    assert owner.delays == [MIN_DELAY]
    throttle.offer("batch", 2)  # the newest of its kind replaces the waiting one
    throttle.flush()
    assert shown == [2]
    throttle.offer("batch", 3)
    assert 0.09 < owner.delays[-1] <= 0.1  # right after an update: the rest of the interval


async def test_every_quiet_spell_still_shows_its_progress():
    shown: list[int] = []

    async def run() -> None:
        app = App()
        async with app.run_test() as pilot:
            throttle = ProgressThrottle(app, shown.append)
            for i in range(20):
                throttle.offer("batch", i)
                await asyncio.sleep(0.12)  # longer than the interval: each offer starts a new timer
            await pilot.pause()

    await run()
    assert shown == list(range(20))
