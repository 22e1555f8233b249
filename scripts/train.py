"""The `hin-captum train` command as a script: train the interaction network from a config and save it with its test metrics."""
from hin_captum.cli import run
from hin_captum.console import command

if __name__ == "__main__":
    run(command("train"))
