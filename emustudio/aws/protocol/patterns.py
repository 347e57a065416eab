"""Java-flavoured model patterns, translated to Python ``re``.

AWS models carry the regular expressions the services enforce with ``java.util.regex``.
Most compile unchanged in Python, but some use Java-only syntax:

* surrogate pairs written as two ``\\uXXXX`` escapes (``\\uD800\\uDC00-\\uDBFF\\uDFFF``), which
  Java reads as one supplementary code point and Python as two reversed-range surrogates;
* Unicode and POSIX property classes (``\\p{L}``, ``\\p{Alnum}``), absent from ``re``;
* ``\\x{h...h}`` escapes and ``(?<name>...)`` groups.

:func:`compile_pattern` rewrites those and compiles with ``re.ASCII``, because Java's ``\\w``,
``\\d`` and ``\\s`` are ASCII-only by default. A pattern that still does not compile (class
intersections, nested classes, ...) yields ``None``: the validator skips it rather than crash.
Matching is ``fullmatch``, as Java's ``Matcher.matches()``.
"""

from __future__ import annotations

import re
import sys
import unicodedata
import warnings
from functools import cache

# Java's POSIX classes are US-ASCII only unless UNICODE_CHARACTER_CLASS is set.
_PUNCT = r"!-/:-@\[-`{-~"
_POSIX: dict[str, str] = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": r"\x00-\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": _PUNCT,
    "Graph": "a-zA-Z0-9" + _PUNCT,
    "Print": r"\x20a-zA-Z0-9" + _PUNCT,
    "Blank": r" \t",
    "Cntrl": r"\x00-\x1f\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": r" \t\n\x0b\f\r",
}

_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")


def _escape_cp(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


@cache
def _category_table() -> dict[str, str]:
    """Class contents (``a-z...``) per two-letter Unicode general category.

    One pass over the code space (a fraction of a second), done only when a pattern first
    needs a ``\\p{..}`` category, then kept.
    """
    ranges: dict[str, list[list[int]]] = {}
    for cp in range(sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        spans = ranges.setdefault(cat, [])
        if spans and spans[-1][1] == cp - 1:
            spans[-1][1] = cp
        else:
            spans.append([cp, cp])
    out: dict[str, str] = {}
    for cat, spans in ranges.items():
        out[cat] = "".join(
            _escape_cp(a) if a == b else f"{_escape_cp(a)}-{_escape_cp(b)}" for a, b in spans
        )
    return out


def _property_class(name: str) -> str | None:
    """Class contents for a Java ``\\p{name}``, or None when unsupported."""
    if name in _POSIX:
        return _POSIX[name]
    for prefix in ("Is", "general_category=", "gc="):
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix) :]
            break
    aliases = {"Letter": "L", "Alphabetic": "L", "Digit": "Nd", "White_Space": "Z"}
    name = aliases.get(name, name)
    if name in _POSIX:
        return _POSIX[name]
    table = _category_table()
    if len(name) == 1 and name.isupper():
        parts = [v for k, v in table.items() if k.startswith(name)]
        return "".join(parts) if parts else None
    if len(name) == 2 and name in table:
        return table[name]
    return None


def _read_u_escape(pattern: str, i: int) -> tuple[int, int] | None:
    r"""Code point and end index of a ``\uXXXX`` escape starting at ``i`` (the backslash)."""
    if pattern.startswith("\\u", i) and _HEX4.fullmatch(pattern, i + 2, i + 6):
        return int(pattern[i + 2 : i + 6], 16), i + 6
    return None


def translate(pattern: str) -> str | None:
    """The Python spelling of a Java regular expression, or None if it has no equivalent."""
    out: list[str] = []
    in_class = False
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            u = _read_u_escape(pattern, i)
            if u is not None:
                cp, end = u
                low = _read_u_escape(pattern, end)
                # Java joins a high+low surrogate escape pair into one supplementary code point.
                if 0xD800 <= cp <= 0xDBFF and low is not None and 0xDC00 <= low[0] <= 0xDFFF:
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low[0] - 0xDC00)
                    end = low[1]
                out.append(_escape_cp(cp))
                i = end
                continue
            if nxt in "pP":
                if i + 2 < n and pattern[i + 2] == "{":
                    close = pattern.find("}", i + 3)
                    if close < 0:
                        return None
                    name, end = pattern[i + 3 : close], close + 1
                elif i + 2 < n:
                    name, end = pattern[i + 2], i + 3
                else:
                    return None
                content = _property_class(name)
                if content is None:
                    return None
                negated = nxt == "P"
                if in_class:
                    if negated:
                        return None
                    out.append(content)
                else:
                    out.append(f"[{'^' if negated else ''}{content}]")
                i = end
                continue
            if nxt == "x" and i + 2 < n and pattern[i + 2] == "{":
                close = pattern.find("}", i + 3)
                if close < 0:
                    return None
                try:
                    cp = int(pattern[i + 3 : close], 16)
                except ValueError:
                    return None
                out.append(_escape_cp(cp))
                i = close + 1
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            elif ch == "[" or pattern.startswith("&&", i):
                # Java class unions and intersections have no ``re`` spelling.
                return None
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            # A leading ']' (or '^]') is literal in both dialects.
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("\\]")
                i += 1
            continue
        if pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@cache
def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """The compiled Python form of a model ``pattern``, or None when it cannot be expressed."""
    translated = translate(pattern)
    if translated is None:
        return None
    try:
        with warnings.catch_warnings():
            # "Possible nested set" and friends mean Java semantics we would get wrong.
            warnings.simplefilter("error")
            return re.compile(translated, re.ASCII)
    except (re.error, FutureWarning, DeprecationWarning, OverflowError, ValueError):
        return None


def matches(pattern: str, value: str) -> bool:
    """Java ``String.matches`` for a model pattern; an untranslatable pattern always matches."""
    compiled = compile_pattern(pattern)
    return compiled is None or compiled.fullmatch(value) is not None
