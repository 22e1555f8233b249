"""The `hin-captum benchmark` command as a script: compare attribution methods, and the LRP composites behind the default (configs/benchmark.yml)."""
from hin_captum.cli import script

if __name__ == "__main__":
    script("benchmark")
