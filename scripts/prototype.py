"""The `hin-captum prototype` command as a script: the most target-like jets the model knows, on the data's manifold: an ntuple, its LRP and figures."""
from hin_captum.cli import script

if __name__ == "__main__":
    script("prototype")
