"""Explain a whole sample: ROOT files streamed chunk by chunk into friend files and a global summary, in this
process or on a Dask cluster."""
from .run import (
    PARTS_FOLDER, SUMMARY_FOLDER, FileResult, MethodRun, RunSettings, SampleExplainer, Tally, accumulate, output_names,
)

__all__ = ["PARTS_FOLDER", "SUMMARY_FOLDER", "FileResult", "MethodRun", "RunSettings", "SampleExplainer", "Tally",
           "accumulate", "output_names"]
