"""Figures: per-jet explanations and method comparisons, with seaborn and matplotlib."""
