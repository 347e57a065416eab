"""Wildcard patterns: actions, resources, ``StringLike`` values and ARN condition values.

A pattern is a sequence of tokens: literal text, ``*`` (any run of characters, possibly empty)
and ``?`` (exactly one character). :mod:`emustudio.iam.variables` produces the tokens, so text
that came from a policy variable or an escape (``${*}``) is always literal. Each pattern is
compiled once and cached: to a regex (``re.escape`` on literals, then the wildcard translation)
when it has at most two ``*``, else to a bit-parallel automaton whose time is linear in the value
(a backtracking regex would take exponential time on patterns such as ``*a*a*a*a*b``).

Four matching modes, as AWS documents them:

``action``
    ``service:Action`` names; the whole string, case-insensitive. ``*`` and ``?`` may appear
    anywhere. (IAM policy grammar: "action names are case insensitive".)
``string``
    ``StringLike``/``StringNotLike``; the whole string, case-sensitive; ``*`` and ``?`` may
    appear anywhere and match any character, ``:`` and newlines included.
``resource``
    The ``Resource``/``NotResource`` element; case-sensitive. AWS: "You can use wildcard
    characters (* and ?) within any ARN segment (the parts separated by colons) ... If the *
    wildcard is the last character of a resource ARN segment, it can expand to match beyond the
    colon boundaries." So a ``*`` that ends a segment (followed by ``:`` or the end of the
    pattern) matches any text, colons included; a ``*`` inside a segment and every ``?`` match
    within one segment only (no ``:``). ``*`` alone matches every resource, including ``"*"``.
``arn``
    ``ArnEquals``/``ArnLike`` and their negations; case-sensitive. AWS: "Each of the six
    colon-delimited components of the ARN is checked separately and each can include
    multi-character match wildcards (*) or single-character match wildcards (?)". The pattern and
    the value are both cut into six components at their first five colons and compared component
    by component; a value or pattern with fewer than six components does not match, except that
    the pattern ``*`` matches any value.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, TypeAlias

Mode = Literal["action", "string", "resource", "arn"]


class Wildcard(enum.Enum):
    STAR = "*"
    QMARK = "?"


Token: TypeAlias = str | Wildcard
Tokens: TypeAlias = tuple[Token, ...]

STAR = Wildcard.STAR
QMARK = Wildcard.QMARK


@lru_cache(maxsize=8192)
def tokenize_plain(text: str) -> Tokens:
    """Tokens of a pattern that has no policy variables: ``*`` and ``?`` are wildcards."""
    tokens: list[Token] = []
    literal: list[str] = []
    for char in text:
        if char in "*?":
            if literal:
                tokens.append("".join(literal))
                literal = []
            tokens.append(STAR if char == "*" else QMARK)
        else:
            literal.append(char)
    if literal:
        tokens.append("".join(literal))
    return tuple(tokens)


def normalize(tokens: Sequence[Token]) -> Tokens:
    """Merge adjacent literals, so equal patterns get equal (cacheable) token tuples."""
    out: list[Token] = []
    for token in tokens:
        if isinstance(token, str):
            if not token:
                continue
            if out and isinstance(out[-1], str):
                out[-1] = out[-1] + token
                continue
        out.append(token)
    return tuple(out)


@dataclass(frozen=True)
class _Wild:
    """A wildcard after the mode's rules: ``*`` or ``?``, and whether it may match ``:``."""

    star: bool
    colon: bool


_Item: TypeAlias = str | _Wild


def _segment_star_is_last(tokens: Tokens, position: int) -> bool:
    """Whether the ``*`` at ``position`` ends its ARN segment (next is ``:`` or the end)."""
    following = tokens[position + 1 :]
    if not following:
        return True
    nxt = following[0]
    return isinstance(nxt, str) and nxt.startswith(":")


def _split_components(tokens: Tokens, count: int) -> list[Tokens] | None:
    """Cut ``tokens`` at the first ``count - 1`` literal colons; ``None`` if there are fewer."""
    components: list[list[Token]] = [[]]
    for token in tokens:
        if isinstance(token, str) and len(components) < count:
            pieces = token.split(":")
            while len(pieces) > 1 and len(components) < count:
                components[-1].append(pieces.pop(0))
                components.append([])
            components[-1].append(":".join(pieces))
        else:
            components[-1].append(token)
    if len(components) != count:
        return None
    return [normalize(component) for component in components]


def _items(tokens: Tokens, mode: Mode) -> tuple[_Item, ...] | None:
    """The pattern with each wildcard's reach decided; ``None`` if it can never match."""
    if mode in ("action", "string"):
        return tuple(t if isinstance(t, str) else _Wild(t is STAR, True) for t in tokens)
    if mode == "resource":
        return tuple(
            t
            if isinstance(t, str)
            else _Wild(t is STAR, t is STAR and _segment_star_is_last(tokens, position))
            for position, t in enumerate(tokens)
        )
    if tokens == (STAR,):
        return (_Wild(True, True),)
    components = _split_components(tokens, 6)
    if components is None:
        return None
    items: list[_Item] = []
    for number, component in enumerate(components):
        if number:
            items.append(":")
        last = number == 5
        items.extend(t if isinstance(t, str) else _Wild(t is STAR, last) for t in component)
    return tuple(items)


class _Automaton:
    """Bit-parallel simulation of the pattern's NFA: O(len(value) x len(pattern) / word).

    Used instead of a regex when a pattern has many ``*``: backtracking regex engines take time
    exponential in the number of stars on a failing match (``*a*a*a*a*b`` against ``aaa...``),
    and policies and context values come from users.
    """

    def __init__(self, items: tuple[_Item, ...], fold_case: bool) -> None:
        self.fold_case = fold_case
        self.literal: dict[str, int] = {}  # char -> positions that consume exactly it
        self.one_any = self.one_plain = 0  # '?' positions (may / may not match ':')
        self.star_any = self.star_plain = 0  # '*' positions (may / may not match ':')
        position = 0
        for item in items:
            if isinstance(item, str):
                for char in item.lower() if fold_case else item:
                    self.literal[char] = self.literal.get(char, 0) | (1 << position)
                    position += 1
                continue
            bit = 1 << position
            if item.star:
                self.star_any |= bit if item.colon else 0
                self.star_plain |= 0 if item.colon else bit
            else:
                self.one_any |= bit if item.colon else 0
                self.one_plain |= 0 if item.colon else bit
            position += 1
        self.stars = self.star_any | self.star_plain
        self.accept = 1 << position

    def _closure(self, state: int) -> int:
        while True:
            grown = state | ((state & self.stars) << 1)
            if grown == state:
                return state
            state = grown

    def fullmatch(self, value: str) -> bool:
        state = self._closure(1)
        for char in value.lower() if self.fold_case else value:
            colon = char == ":"
            advance = self.literal.get(char, 0) | self.one_any | (0 if colon else self.one_plain)
            stay = self.star_any | (0 if colon else self.star_plain)
            state = self._closure(((state & advance) << 1) | (state & stay))
            if not state:
                return False
        return bool(state & self.accept)


class _Regex:
    def __init__(self, items: tuple[_Item, ...], fold_case: bool) -> None:
        parts = []
        for item in items:
            if isinstance(item, str):
                parts.append(re.escape(item))
            elif item.star:
                parts.append(".*" if item.colon else "[^:]*")
            else:
                parts.append("." if item.colon else "[^:]")
        flags = re.DOTALL | (re.IGNORECASE if fold_case else 0)
        self.regex = re.compile("".join(parts), flags)

    def fullmatch(self, value: str) -> bool:
        return self.regex.fullmatch(value) is not None


REGEX_MAX_STARS = 2
"""Patterns with more ``*`` than this are matched by :class:`_Automaton`, not a regex."""


@lru_cache(maxsize=8192)
def compile_tokens(tokens: Tokens, mode: Mode) -> _Regex | _Automaton | None:
    """A matcher for a pattern, or ``None`` if the pattern can never match."""
    items = _items(tokens, mode)
    if items is None:
        return None
    stars = sum(1 for item in items if isinstance(item, _Wild) and item.star)
    kind = _Regex if stars <= REGEX_MAX_STARS else _Automaton
    return kind(items, fold_case=mode == "action")


def tokens_match(tokens: Tokens, value: str, mode: Mode) -> bool:
    """Whether ``value`` matches the pattern ``tokens`` under ``mode`` (the whole value)."""
    if mode == "arn" and tokens != (STAR,) and value.count(":") < 5:
        return False
    matcher = compile_tokens(normalize(tokens), mode)
    return matcher is not None and matcher.fullmatch(value)


def matches(pattern: str, value: str, mode: Mode) -> bool:
    """Whether ``value`` matches the variable-free ``pattern`` under ``mode``."""
    return tokens_match(tokenize_plain(pattern), value, mode)


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching: ``emr:Create*`` matches ``EMR:CreateStudio`` (case-insensitive)."""
    return matches(pattern, action, "action")


@lru_cache(maxsize=4096)
def _action_list(patterns: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    exact = frozenset(p.lower() for p in patterns if "*" not in p and "?" not in p)
    return exact, tuple(p for p in patterns if "*" in p or "?" in p)


def any_action_matches(patterns: tuple[str, ...], action: str) -> bool:
    """Whether a pattern of an ``Action`` list matches ``action`` (exact names via a set)."""
    exact, wild = _action_list(patterns)
    return action.lower() in exact or any(action_matches(p, action) for p in wild)
