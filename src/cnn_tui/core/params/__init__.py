"""Params: the one table of fields, the data and hyper params files, named presets."""
