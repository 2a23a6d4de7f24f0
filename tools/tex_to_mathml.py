"""The lessons' formulas as MathML, converted when the site is built, so that a page renders them offline.

The lessons write formulas in TeX between dollars, as Jupyter expects: ``$k$`` inline, ``$$ ... $$`` on their
own. Jupyter and code hosts render them with MathJax; a page of the site must not fetch a script from
elsewhere, and browsers render MathML themselves. ``markdown_with_mathml`` replaces each formula of a
markdown cell with the MathML that latex2mathml (pure Python) makes of it, leaving code alone: fenced
blocks and inline code spans keep their dollars. The MathML's text is written with character references
wherever Markdown would read a character as markup (``*``, ``_``, ``[`` ...), so the notebook renderer that
runs after passes it through unchanged.
"""
import re

__all__ = ["markdown_with_mathml", "MathConversionError"]

_FENCE = re.compile(r"^\s{0,3}(?:>\s?)*(```|~~~)")
_QUOTE_PREFIX = re.compile(r"^\s{0,3}(?:>\s?)+", re.MULTILINE)  # a formula running on inside a block quote
_TEXT_NODE = re.compile(r">([^<]+)<")
_MARKUP = re.compile(r"(&#?\w+;)|([\\`*_\[\](){}#+\-.!|~$:<>])")


class MathConversionError(ValueError):
    """A formula that latex2mathml cannot convert (an unknown command, an unbalanced brace)."""


def _mathml(tex, display):
    from latex2mathml.converter import convert

    tex = _QUOTE_PREFIX.sub(" ", tex).strip()
    try:
        mathml = convert(tex, display="block" if display else "inline")
    except Exception as error:  # latex2mathml raises its own types, and IndexError/KeyError on bad input
        raise MathConversionError(f"cannot convert the formula {tex!r}: {type(error).__name__}: {error}") from error
    if "\\" in mathml:  # an unknown command comes through as its own name
        raise MathConversionError(f"cannot convert the formula {tex!r}: a TeX command is left in {mathml[:200]!r}")
    mathml = _TEXT_NODE.sub(lambda m: ">" + _MARKUP.sub(
        lambda c: c.group(1) or f"&#{ord(c.group(2))};", m.group(1)) + "<", mathml)
    return mathml.replace("\n", " ")


def _convert_prose(text):
    """The formulas of Markdown prose that holds no fenced block; returns (text, formulas converted)."""
    out, count, i = [], 0, 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):  # an escaped character (\$ is a dollar sign), kept as written
            out.append(text[i:i + 2])
            i += 2
        elif char == "`":  # an inline code span: kept as written, dollars and all
            run = len(text[i:]) - len(text[i:].lstrip("`"))
            close = text.find("`" * run, i + run)
            while close >= 0 and text[close + run:close + run + 1] == "`":
                close = text.find("`" * run, close + run + 1)
            end = close + run if close >= 0 else i + run
            out.append(text[i:end])
            i = end
        elif text.startswith("$$", i):
            close = text.find("$$", i + 2)
            if close < 0:
                raise MathConversionError(f"a $$ opens a formula that never closes: {text[i:i + 80]!r}")
            out.append(_mathml(text[i + 2:close], display=True))
            count += 1
            i = close + 2
        elif char == "$":
            close = text.find("$", i + 1)
            blank_line = re.search(r"\n\s*\n", text[i:close]) if close >= 0 else None
            if close < 0 or close == i + 1 or blank_line:
                raise MathConversionError(f"a $ opens a formula that never closes in its paragraph: "
                                          f"{text[i:i + 80]!r} (write \\$ for a dollar sign)")
            out.append(_mathml(text[i + 1:close], display=False))
            count += 1
            i = close + 1
        else:
            out.append(char)
            i += 1
    return "".join(out), count


def markdown_with_mathml(markdown):
    """A markdown cell's text with every TeX formula replaced by MathML.

    Parameters
    ----------
    markdown : str, the cell's source

    Returns ``(text, count)``: the new text and how many formulas it converted. Fenced code blocks and inline
    code are left as written. A formula that cannot be converted, or a dollar that opens a formula and never
    closes it, raises ``MathConversionError`` quoting it.
    """
    pieces, prose, fenced, count = [], [], None, 0
    for line in markdown.splitlines(keepends=True):
        fence = _FENCE.match(line)
        if fenced is None and fence:
            converted, found = _convert_prose("".join(prose))
            pieces.append(converted)
            count += found
            prose, fenced = [], fence.group(1)
            pieces.append(line)
        elif fenced is not None:
            pieces.append(line)
            if fence and fence.group(1) == fenced:
                fenced = None
        else:
            prose.append(line)
    converted, found = _convert_prose("".join(prose))
    return "".join(pieces) + converted, count + found
