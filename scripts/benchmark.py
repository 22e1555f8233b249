"""The `hin-captum benchmark` command as a script: compare attribution methods, and the LRP composites behind the default (configs/benchmark.yml)."""
from hin_captum.cli import run
from hin_captum.console import command

if __name__ == "__main__":
    run(command("benchmark"))
