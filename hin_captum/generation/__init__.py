"""Generator-level jets (Pythia 8 + FastJet) and JetClass-schema ROOT files of them (the ``generate`` extra)."""
from .jetclass import generate_jetclass, jetclass_branches, write_jetclass
from .pythia import Jet, generate_events, iterate_jets

__all__ = ["Jet", "generate_events", "generate_jetclass", "iterate_jets", "jetclass_branches", "write_jetclass"]
