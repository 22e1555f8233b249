"""Explain a whole sample: ROOT files streamed chunk by chunk into friend files and a global summary, the work units
run in this process or on a Dask cluster by the same path."""
from ..output.files import SUMMARY_FOLDER
from .executors import InProcess, OnDask, dask_client, default_threads
from .plan import Plan, output_names
from .run import explain_sample, run_sample
from .settings import RunSettings
from .units import FileResult, FileStatus, MethodRun, Tally, UnitResult, UnreadableEntries, WorkUnit, accumulate
from .worker import Worker

__all__ = ["FileResult", "FileStatus", "InProcess", "MethodRun", "OnDask", "Plan", "RunSettings", "SUMMARY_FOLDER",
           "Tally", "UnitResult", "UnreadableEntries", "WorkUnit", "Worker", "accumulate", "dask_client",
           "default_threads", "explain_sample", "output_names", "run_sample"]
