"""The `hin-captum attribute` command as a script: explain a jet tagger on ROOT ntuples: a friend file per input file, a summary and figures."""
from hin_captum.cli import script

if __name__ == "__main__":
    script("attribute")
