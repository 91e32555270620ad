"""Inspecting a model: feature maps and Grad-CAM, error analysis, report PNGs and CSVs."""
