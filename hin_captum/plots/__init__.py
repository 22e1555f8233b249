"""Figures: per-jet explanations and method comparisons, with seaborn and matplotlib.

Figures are only ever written to files, so the non-interactive Agg backend is chosen here, once.
"""
import matplotlib

matplotlib.use("Agg")
