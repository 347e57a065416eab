"""Policy variables: ``${aws:username}``, ``${aws:PrincipalTag/team, 'none'}``, ``${*}``.

Semantics (IAM User Guide, "IAM policy elements: Variables and tags"):

* Variables are substituted only in documents whose ``Version`` is ``2012-10-17``. Under
  ``2008-10-17`` (or with no ``Version``) ``${aws:username}`` is literal text.
* They are substituted in ``Resource``/``NotResource`` and in the values of string, ARN and
  ``Bool`` conditions; never in actions, condition keys, or numeric, date, binary, IP or
  ``Null`` values. (Callers decide where; this module only substitutes.)
* The key name is case-insensitive and may contain blanks (tag keys can:
  ``${aws:PrincipalTag/cost center}``). Its value must be single-valued: a multivalued key such as
  ``aws:TagKeys`` does not resolve.
* ``${key, 'default'}`` uses ``default`` when the key does not resolve; ``''`` inside the
  quotes is one quote. Blanks around the key and the default are ignored.
* ``${*}``, ``${?}`` and ``${$}`` are a literal ``*``, ``?`` and ``$``.
* A ``${`` that does not start a well-formed variable is literal text.
* Substitution is one pass: text that comes from a variable or a default (and the escapes) is
  literal, never a wildcard and never another variable.
* A variable that does not resolve and has no default makes the whole value unresolvable
  (``None``). AWS: "any attempt to match it fails and causes the statement to be invalid";
  how each element treats that is decided in ``evaluate.py`` and ``conditions.py``.
"""

from __future__ import annotations

import re

from emustudio.iam.keys import ConditionContext
from emustudio.iam.patterns import Token, Tokens, normalize, tokenize_plain

_VARIABLE = re.compile(
    r"""\$\{\s*
    (?:
        (?P<escape>[*?$])
      | (?P<key>[^\s}',](?:[^}',]*[^\s}',])?)\s*(?:,\s*'(?P<default>(?:[^']|'')*)'\s*)?
    )
    \}""",
    re.VERBOSE,
)


def has_variables(text: str) -> bool:
    """Whether ``text`` contains anything that substitution would change."""
    return _VARIABLE.search(text) is not None


def substitute(text: str, context: ConditionContext, enabled: bool = True) -> Tokens | None:
    """The pattern tokens of ``text`` with its variables replaced by their values.

    Returns ``None`` if a variable has no value and no default. With ``enabled=False``
    (documents older than ``2012-10-17``) the text is tokenized as it stands.
    """
    if not enabled or "${" not in text:
        return tokenize_plain(text)
    tokens: list[Token] = []
    position = 0
    for match in _VARIABLE.finditer(text):
        tokens.extend(tokenize_plain(text[position : match.start()]))
        position = match.end()
        escape = match.group("escape")
        if escape is not None:
            tokens.append(escape)
            continue
        value = context.single(match.group("key"))
        if value is None:
            default = match.group("default")
            if default is None:
                return None
            value = default.replace("''", "'")
        tokens.append(value)
    tokens.extend(tokenize_plain(text[position:]))
    return normalize(tokens)


def as_text(tokens: Tokens) -> str:
    """Tokens back to a plain string, wildcards as their characters (for exact comparisons)."""
    return "".join(t if isinstance(t, str) else t.value for t in tokens)


def substitute_text(text: str, context: ConditionContext, enabled: bool = True) -> str | None:
    """``text`` with its variables replaced, as a plain string; ``None`` if unresolvable."""
    if not enabled or "${" not in text:
        return text
    tokens = substitute(text, context, enabled)
    return None if tokens is None else as_text(tokens)
