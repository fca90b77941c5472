""".dockerignore read as Docker reads it: which paths a build leaves out of the image.

`make heroku-deploy` uses it: a file that differs from HEAD but that both
the local and Heroku's build leave out (README.md, tests/) makes no
difference between the two images. The rules follow Docker's own reader
and matcher (moby's ignorefile and patternmatcher, as the "Dockerfile
reference: .dockerignore file" describes them): a line starting with ``#``
is a comment; a line is cleaned as a path, without a leading ``/``; ``*``
and ``?`` stay within a directory, ``**`` spans any number of them; ``!``
makes an exception; and the last rule that matches a path, or a directory
above it, decides. A suite test compares the result with what a build
through Compose puts in the image.

Standard library only, like the scripts beside it.
"""

from __future__ import annotations

import posixpath
import re

Rules = list[tuple[bool, re.Pattern[str]]]

# Regular expression characters that mean nothing in Docker's patterns, escaped as Docker escapes them.
_LITERAL = set(".+()|{}$")


class PatternError(ValueError):
    """A .dockerignore line that is no pattern Docker can read; the message is one line."""


def parse(text: str) -> Rules:
    """Return the rules of a .dockerignore's ``text``, in order, as (exception, whole-path pattern)."""
    rules: Rules = []
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        if line.startswith("#"):  # a comment only in the first column; "  #x" is a pattern
            continue
        line = line.strip()
        exception = line.startswith("!")
        pattern = line.removeprefix("!").strip()
        if not pattern:
            continue
        pattern = posixpath.normpath(pattern).lstrip("/") or "."
        if pattern == ".":  # the context itself: Docker ignores such a line
            continue
        try:
            rules.append((exception, re.compile(_regex(pattern))))
        except re.error as exc:
            raise PatternError(f".dockerignore line {number} ({line}) is not a pattern Docker reads: {exc}") from None
    return rules


def _regex(pattern: str) -> str:
    """Translate one cleaned pattern into a regular expression, character by character as Docker does.

    Docker compares a pattern with no wildcard, one that only ends in ``**``
    and one that only starts with it as strings (equal, prefix, suffix), and
    translates the rest into a regular expression: so ``q^z`` is the file
    ``q^z``, while ``q^z*`` matches nothing (``^`` is an anchor there).
    """
    out, kind, i = [], "exact", 0
    while i < len(pattern):
        start, char = i, pattern[i]
        i += 1
        if char == "*" and pattern[i : i + 1] == "*":  # "**": any number of directories
            i += 1
            if pattern[i : i + 1] == "/":
                i += 1
            if i < len(pattern):
                out.append("(.*/)?")
                kind = "regex"
            elif kind == "exact":
                kind = "prefix"
            else:
                out.append(".*")
                kind = "regex"
            if start == 0:
                kind = "suffix"
        elif char in "*?[]":
            out.append({"*": "[^/]*", "?": "[^/]"}.get(char, char))  # "[" and "]" pass through, as in Docker's
            kind = "regex"
        elif char in _LITERAL:
            out.append("\\" + char)
        elif char == "\\" and i < len(pattern):  # the next character as it is
            out.append(re.escape(pattern[i]))
            i += 1
            kind = "regex"
        elif char == "\\":  # a trailing one stays
            out.append("\\\\")
        else:  # the rest passes through, "^" included, as in Docker's translation
            out.append(char)
    if kind == "exact":
        return re.escape(pattern)
    if kind == "prefix":
        return re.escape(pattern[:-2]) + ".*"
    if kind == "suffix":  # "**/x" is also "x" itself
        suffix = pattern[2:]
        return ".*" + re.escape(suffix) + ("|" + re.escape(suffix[1:]) if suffix.startswith("/") else "")
    return "".join(out)


def left_out(path: str, rules: Rules) -> bool:
    """Whether ``path`` (relative, / between parts) is outside the build context by ``rules``."""
    parts = path.rstrip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for exception, pattern in rules:
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            excluded = not exception
    return excluded
