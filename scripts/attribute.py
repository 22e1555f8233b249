"""The `hin-captum attribute` command as a script: explain a jet tagger on ROOT ntuples: a friend file per input file, a summary and figures."""
from hin_captum.cli import run
from hin_captum.console import command

if __name__ == "__main__":
    run(command("attribute"))
