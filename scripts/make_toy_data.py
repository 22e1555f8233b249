"""The `hin-captum make-toy-data` command as a script: write toy H->bb and QCD jets as a ROOT file in the CMS ntuple schema."""
from hin_captum.cli import run
from hin_captum.console import command

if __name__ == "__main__":
    run(command("make-toy-data"))
