"""The `hin-captum make-toy-data` command as a script: write toy H->bb and QCD jets as a ROOT file in the CMS ntuple schema."""
from hin_captum.cli import script

if __name__ == "__main__":
    script("make-toy-data")
