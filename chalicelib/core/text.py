"""Text a client may store: no characters that act instead of being read.

C0 and C1 control characters (NUL, ESC and the terminal sequences it starts, BEL, backspace, ...), DEL, and
Unicode's bidirectional embeddings, overrides and isolates can rewrite an operator's terminal, hide text in a
log line, or make an id read differently from what it is (an override reverses what follows it). A name (an id,
a payer, a unit, a metadata key) may hold none of them; free text (a metadata value, a description) may break
lines and hold tabs, nothing else of them. The bidirectional *marks* (LRM, RLM, ALM) stay allowed: they only
nudge the direction of neutral characters beside them, as right-to-left text needs.
"""
from __future__ import annotations

import re

from chalicelib.core.errors import InvalidRequest

# As a character class's body, so request models can put it into their patterns.
CONTROL_CHARACTERS = "\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069"
LINE_CHARACTERS = "\t\n"  # what free text may hold of the controls above
_IN_NAME = re.compile(f"[{CONTROL_CHARACTERS}]")


def control_in_name(value: str) -> str | None:
    """The first control character in a name, if any."""
    found = _IN_NAME.search(value)
    return found.group() if found else None


def control_in_text(value: str) -> str | None:
    """The first control character in free text other than a tab or a line break, if any."""
    for found in _IN_NAME.finditer(value):
        if found.group() not in LINE_CHARACTERS:
            return found.group()
    return None


def check_name(field: str, value: str) -> str:
    """`value`, refused (400 naming `field` and the character) when it holds a control character."""
    found = control_in_name(value)
    if found is not None:
        raise InvalidRequest(f"{field} must not contain control or bidirectional-override characters "
                             f"(found U+{ord(found):04X})", field=field)
    return value


def check_text(field: str, value: str) -> str:
    """Free text: as `check_name`, but tabs and line breaks are allowed."""
    found = control_in_text(value)
    if found is not None:
        raise InvalidRequest(f"{field} must not contain control or bidirectional-override characters other than "
                             f"tabs and line breaks (found U+{ord(found):04X})", field=field)
    return value
