"""KEY=VALUE items from the command line (--param, --set)."""

from lab.errors import LabError


def pairs(items: list[str], option: str, form: str) -> dict[str, str]:
    """KEY=VALUE command-line items as a dict."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise LabError(f"{option} takes {form}, not {item!r}")
        out[name] = value
    return out
