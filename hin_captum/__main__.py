"""``python -m hin_captum``: the ``hin-captum`` command."""
from .cli import main

main()
