"""The one exception type for bad user input.

Scripts catch :class:`InputError` and print its message as a single line, so
every message must say what is wrong and how to fix it.
"""


class InputError(ValueError):
    """Bad input from the user: a missing file, a wrong checkpoint, an unknown option."""
