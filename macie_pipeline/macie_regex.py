"""Macie's regular expression dialect (a PCRE subset), checked at synth as far as Python can tell.

Macie reports an invalid custom data identifier or allow list only when CloudFormation creates it;
these checks move what is clearly wrong to synth time, with a message that names the construct.
"""

from __future__ import annotations

import re
from typing import Optional

from .props import MAX_REGEX_LENGTH

# Escapes PCRE (Macie's dialect) knows and Python's re does not: not an error in a Macie regex.
_PCRE_ONLY_ESCAPES = frozenset("hHVRXCNKGQEpPgkoexcz")

_RECURSION = re.compile(r"(?:R|[+-]?[0-9]+|&\w+|P>\w+)\)")
_GLOBAL_FLAGS = re.compile(r"[a-zA-Z]*(?:-[a-zA-Z]+)?\)")


def check_regex(problems: list, where: str, regex: object) -> None:
    """Reject what is clearly invalid in Macie's PCRE subset; Python's re is only a stand-in for it."""
    if not isinstance(regex, str) or not regex:
        problems.append(f"{where}: regex must be a non-empty string")
        return
    if len(regex) > MAX_REGEX_LENGTH:
        problems.append(f"{where}: regex is {len(regex)} characters, Macie allows at most {MAX_REGEX_LENGTH}")
    unsupported = unsupported_regex_constructs(regex)
    for what, token in unsupported:
        problems.append(f"{where}: regex uses {what} ({token!r}), which Macie does not support")
    err = None if unsupported else python_compile_error(regex)
    if err is not None:
        problems.append(f"{where}: invalid regex {regex!r}: {err}")


# ---------------------------------------------------------------------- what Python's re would reject
def python_compile_error(regex: str) -> Optional[re.error]:
    """Python's verdict on the regex, ignoring what only PCRE (Macie's dialect) has: escapes such as
    ``\\p{L}`` or ``\\h``, ``\\Q...\\E`` quoting, named groups ``(?<name>...)``/``(?'name'...)`` and branch
    resets ``(?|...)``. Each is replaced by as many plain characters, so the positions in Python's
    message still point into the original regex."""
    candidate = regex
    for _ in range(len(regex) + 1):
        try:
            re.compile(candidate)
            return None
        except re.error as err:
            replaced = _without_pcre_only(candidate, err)
            if replaced is None:
                return err
            candidate = replaced
    return None


def _without_pcre_only(candidate: str, err: re.error) -> Optional[str]:
    """``candidate`` with the PCRE-only construct at the error's position made plain; None when the
    error is not about such a construct (then it is a real error)."""
    pos = err.pos if err.pos is not None else -1
    head = candidate[pos : pos + 2] if pos >= 0 else ""
    group = candidate[pos - 1 : pos + 2] if pos >= 1 else ""
    if head == "\\Q":
        end = candidate.find("\\E", pos + 2)
        return _plain(candidate, pos, len(candidate) if end < 0 else end + 2)
    if head[:1] == "\\" and head[1:] in _PCRE_ONLY_ESCAPES:
        return _plain(candidate, pos, pos + 2)
    if group in ("(?<", "(?'") and err.msg.startswith("unknown extension"):
        closing = candidate.find(">" if group == "(?<" else "'", pos + 2)
        if closing < 0:
            return None
        return candidate[:pos] + ":" + "a" * (closing - pos) + candidate[closing + 1 :]
    if group == "(?|":
        candidate = candidate[:pos] + ":" + candidate[pos + 2 :]
        return candidate[: pos + 1] + "a" + candidate[pos + 1 :]
    return None


def _plain(candidate: str, start: int, end: int) -> str:
    return candidate[:start] + "a" * (end - start) + candidate[end:]


# ---------------------------------------------------------------------- what Macie documents as unsupported
def unsupported_regex_constructs(regex: str) -> list[tuple[str, str]]:
    """``(what, token)`` for each construct Macie documents as unsupported (backreferences,
    lookaround, conditionals, recursion, embedded code, global flags), once per kind, in order.

    Capturing groups are also listed as unsupported by Macie, but plain parentheses are too common
    to reject on a reading of the documentation: Macie itself reports them when the resource is created.
    """
    found: dict[str, str] = {}
    i, n, in_class = 0, len(regex), False
    while i < n:
        char = regex[i]
        if char == "\\":
            i = _escape(regex, i, in_class, found)
        elif in_class:
            in_class = char != "]"
            i += 1
        elif char == "[":
            i = _class_body_start(regex, i)
            in_class = True
        else:
            if char == "(" and regex[i + 1 : i + 2] == "?":
                _group_extension(regex[i + 2 :], found)
            i += 1
    return list(found.items())


def _escape(regex: str, i: int, in_class: bool, found: dict[str, str]) -> int:
    """Note a backreference or recursion escape at ``i``; return the index after the escape."""
    following = regex[i + 1 : i + 2]
    if following == "Q":
        end = regex.find("\\E", i + 2)
        return len(regex) if end < 0 else end + 2
    if not in_class:
        if following and following in "123456789":
            found.setdefault("a backreference", regex[i : i + 2])
        elif following == "k" or (following == "g" and regex[i + 2 : i + 3] not in ("<", "'")):
            found.setdefault("a backreference", regex[i : i + 3])
        elif following == "g":
            found.setdefault("a recursive pattern", regex[i : i + 3])
    return i + 2


def _class_body_start(regex: str, i: int) -> int:
    """The index of the first character inside a character class opened at ``i``."""
    i += 1
    i += 1 if regex[i : i + 1] == "^" else 0
    i += 1 if regex[i : i + 1] == "]" else 0  # a leading ] is literal
    return i


def _group_extension(rest: str, found: dict[str, str]) -> None:
    """Note the unsupported kind of a ``(?...`` group, given what follows ``(?``."""
    recursion = _RECURSION.match(rest)
    flags = _GLOBAL_FLAGS.match(rest)
    if rest[:1] in ("=", "!"):
        found.setdefault("a lookahead", "(?" + rest[:1])
    elif rest[:2] in ("<=", "<!"):
        found.setdefault("a lookbehind", "(?" + rest[:2])
    elif rest[:1] == "(":
        found.setdefault("a conditional pattern", "(?(")
    elif rest[:1] == "{" or rest[:2] == "?{":
        found.setdefault("embedded code", "(?" + ("?{" if rest[:1] == "?" else "{"))
    elif recursion:
        found.setdefault("a recursive pattern", "(?" + recursion.group(0))
    elif rest[:2] == "P=":
        found.setdefault("a backreference", "(?P=")
    elif flags and flags.group(0) != ")":
        found.setdefault("a global pattern flag", "(?" + flags.group(0))
