"""Explain a whole sample: ROOT files streamed chunk by chunk into friend files and a global summary, the work units
run in this process or on a Dask cluster by the same path."""
from .executors import InProcess, OnDask, dask_client, default_threads
from .run import explain_sample, run_sample
from ..output.files import SUMMARY_FOLDER
from .plan import Plan, output_names
from .settings import RunSettings
from .worker import Worker
from .units import FileResult, FileStatus, MethodRun, Tally, UnitResult, UnreadableEntries, WorkUnit, accumulate

__all__ = ["FileResult", "FileStatus", "InProcess", "MethodRun", "OnDask", "RunSettings", "SUMMARY_FOLDER", "Plan",
           "Tally", "UnitResult", "UnreadableEntries", "WorkUnit", "accumulate", "dask_client", "default_threads",
           "Worker", "explain_sample", "output_names", "run_sample"]
