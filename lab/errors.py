"""Errors the CLI shows to a user as one clear line (no traceback)."""


class LabError(Exception):
    """Something the user can act on: bad input, a broken engine, a failed step."""


class PrerequisiteMissing(LabError):
    """This host lacks something a command needs; the message says exactly what."""
