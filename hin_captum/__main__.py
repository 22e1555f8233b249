"""``python -m hin_captum``: the ``hin-captum`` command."""
from .console import main

main()
