"""Text from files, made safe to show on a terminal.

A weight file's metadata, its class names, a folder's names are text someone else wrote. Printed raw, a
terminal escape sequence in them (``\\x1b[2J``) acts on the user's terminal, and a class name
``"cat\\n  99.99%  tiger"`` prints a forged line of ``minivgg predict``'s output. ``shown`` escapes every control
character (C0, DEL, C1) and the Unicode controls that reorder or hide text (bidirectional overrides,
zero-width and line separators) the way Python's ``repr`` writes them (``\\n``, ``\\x1b``, ``\\u202e``); every
other character, accented letters and other scripts included, is shown as it is.
"""
import unicodedata

__all__ = ["shown"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(character):
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _is_control(character):
    # Cc: C0, DEL and C1 controls; Cf: format characters (bidirectional overrides, zero-width joiners...);
    # Zl, Zp: the line and paragraph separators, which some terminals break lines at.
    return unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp")


def shown(text):
    """``text`` (anything; ``str()`` of it) with its control characters escaped, so that it is shown on one
    line, and acts on nothing."""
    text = str(text)
    if text.isprintable():  # the common case, at once
        return text
    return "".join(_escape(c) if _is_control(c) else c for c in text)
