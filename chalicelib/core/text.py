"""Text a client may store: no characters that act, or hide, instead of being read.

C0 and C1 control characters (NUL, ESC and the terminal sequences it starts, BEL, backspace, ...) and DEL can
rewrite an operator's terminal or a log line. Unicode's format characters (category Cf: the bidirectional
embeddings, overrides and isolates, which reorder what follows them, and the zero-width ones, which make
`bra\u200bnd` look like `brand`) and its line and paragraph separators make a name read as another.

- A name (an id, a payer, a unit, a metadata key, any key of a request body) holds none of them.
- Free text (a metadata value, any other string of a body) may break lines and hold tabs; it holds no other
  control character, no bidirectional embedding, override or isolate and no line or paragraph separator (a
  line breaks with LF). Other format characters stay allowed there: the zero-width joiner makes emoji and some
  scripts, the bidirectional marks right-to-left text.
"""
from __future__ import annotations

import re
import unicodedata

from chalicelib.core.errors import InvalidRequest

_NAME_REFUSES = frozenset({"Cc", "Cf", "Zl", "Zp"})  # controls, format characters, line and paragraph separators
LINE_CHARACTERS = "\t\n"  # what free text may hold of the controls
# What free text refuses: C0 and C1 controls but tab and LF, DEL, the bidirectional embeddings, overrides and
# isolates, and the line and paragraph separators. (The bidirectional marks stay: right-to-left text needs them,
# and they reorder nothing but the neutral characters beside them.)
_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
MAX_SHOWN = 64  # of a refused name, in a message: a client's key may be long


def control_in_name(value: str) -> str | None:
    """The first character a name may not hold, if any."""
    return next((character for character in value if unicodedata.category(character) in _NAME_REFUSES), None)


def control_in_text(value: str) -> str | None:
    """The first character free text may not hold, if any."""
    found = _IN_TEXT.search(value)
    return found.group() if found else None


def shown(name: str) -> str:
    """A client's name as a message may show it: escaped where it holds a character that acts, and cut short."""
    text = name if control_in_name(name) is None else name.encode("unicode_escape").decode("ascii")
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}..."


def check_name(field: str, value: str) -> str:
    """`value`, refused (400 naming `field` and the character) when it holds a character a name may not."""
    found = control_in_name(value)
    if found is not None:
        raise InvalidRequest(f"{field} must not contain control, format or separator characters "
                             f"(found U+{ord(found):04X})", field=field)
    return value


def check_text(field: str, value: str) -> str:
    """Free text: refused when it holds a control character other than a tab or a line break, a bidirectional
    control, or a line or paragraph separator."""
    found = control_in_text(value)
    if found is not None:
        raise InvalidRequest(f"{field} must not contain control or bidirectional characters other than tabs and "
                             f"line breaks (found U+{ord(found):04X})", field=field)
    return value
