"""The one rule for every redirect the console takes from a request (`next` after sign-in,
`back` after a replay): only a page of the console itself, as a plain path."""

from __future__ import annotations

import re

from flask import url_for

# A path under /admin of printable ASCII without spaces or backslashes: no other host
# (`//evil`, `/admin\\@evil`), no scheme, and nothing a header cannot carry (CR, LF).
_CONSOLE_PATH = re.compile(r"/admin(?:[/?][!-~]*)?")
MAX_LENGTH = 2000


def console_page(target: str | None, *, fallback: str = "admin.overview") -> str:
    """`target` if it is a page of the console, else the `fallback` page's URL."""
    if (
        target
        and len(target) <= MAX_LENGTH
        and _CONSOLE_PATH.fullmatch(target)
        and "\\" not in target
        and "/.." not in target
        and not target.startswith("/admin//")
    ):
        return target
    return url_for(fallback)
