"""What a terminal puts in a line besides text: escape sequences (arrow keys without line
editing arrive as `ESC [ A`, bracketed paste as `ESC [ 200 ~`, colours pasted from another
program) and other control characters. None of it is meant as text, so none of it is posted."""
from __future__ import annotations

import re

# ECMA-48: control strings (OSC, DCS, SOS, PM, APC) up to their terminator (BEL or ST) or the
# end of the line; CSI with its parameters; SS2/SS3 with the character they shift; any other
# escape sequence (intermediates then a final byte); their 8-bit C1 forms; then any control left.
_SEQUENCES = re.compile(
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[NO]|[\x8e\x8f]).?"
    r"|\x1b[ -/]*[0-~]?",
    re.DOTALL,
)
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def strip_controls(line: str) -> str:
    """`line` without terminal escape sequences and C0/C1 control characters (a tab becomes a
    space: it separates words)."""
    return _CONTROLS.sub("", _SEQUENCES.sub("", line)).replace("\t", " ")
