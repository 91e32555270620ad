"""The main screen's parts: each owns one concern of the screen (its task, params, data tools, inspecting,
export, an ended run's display)."""
