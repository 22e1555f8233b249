"""The `hin-captum train` command as a script: train the interaction network from a config and save it with its test metrics."""
from hin_captum.cli import script

if __name__ == "__main__":
    script("train")
