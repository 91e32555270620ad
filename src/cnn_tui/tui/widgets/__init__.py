"""Widgets of the main screen: header bars, progress rows, charts, tables, image samples, forms."""
