"""Benchmarks: attribution methods side by side (``comparison``), the composite study behind the default LRP
(``study``), and the speed and scale benchmarks of LRP and of the whole-sample pipeline."""
