"""SemVer 2.0.0 tags: parsing with a precise reason on failure, and precedence ordering.

Tags may carry a leading ``v`` (``v1.2.3``). Precedence follows semver.org §11: major, minor,
patch numerically; a prerelease ranks below its release; prerelease identifiers compare
left to right, numeric ones numerically and below alphanumeric ones (ASCII order), and a
shorter list ranks lower when all its identifiers are equal. Build metadata is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_IDENTIFIER = re.compile(r"^[0-9A-Za-z-]+$")
_NUMERIC = re.compile(r"^[0-9]+$")


class InvalidVersion(ValueError):
    """The tag is not SemVer 2.0; ``reason`` says exactly which rule it breaks."""

    def __init__(self, tag: str, reason: str) -> None:
        super().__init__(f"{tag!r} is not a SemVer 2.0 tag: {reason}")
        self.tag = tag
        self.reason = reason


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def precedence_key(self) -> tuple:
        """Sort key for precedence (ascending); equal for versions differing only in build."""
        if not self.prerelease:
            return (self.major, self.minor, self.patch, 1, ())
        identifiers = tuple(
            (0, int(part), "") if _NUMERIC.match(part) else (1, 0, part) for part in self.prerelease
        )
        return (self.major, self.minor, self.patch, 0, identifiers)


def _identifiers(tag: str, text: str, what: str, *, numeric_rule: bool) -> tuple[str, ...]:
    parts = tuple(text.split("."))
    for part in parts:
        if part == "":
            raise InvalidVersion(tag, f"{what} has an empty identifier")
        if not _IDENTIFIER.match(part):
            raise InvalidVersion(
                tag, f"{what} identifier {part!r} may only use ASCII letters, digits and '-'"
            )
        if numeric_rule and _NUMERIC.match(part) and len(part) > 1 and part.startswith("0"):
            raise InvalidVersion(tag, f"numeric {what} identifier {part!r} has a leading zero")
    return parts


def parse(tag: str) -> Version:
    """Parse ``v1.2.3``, ``1.0.0-rc.1``, ``1.0.0+build.5``; raise InvalidVersion otherwise."""
    text = tag.strip()
    if text != tag or not text:
        raise InvalidVersion(tag, "empty or surrounded by whitespace")
    if text.startswith("v"):
        text = text[1:]
    core, plus, build_text = text.partition("+")
    core, dash, pre_text = core.partition("-")
    numbers = core.split(".")
    if len(numbers) != 3:
        raise InvalidVersion(
            tag, "expected MAJOR.MINOR.PATCH (three dot-separated numbers, e.g. v1.2.3)"
        )
    values = []
    for label, number in zip(("major", "minor", "patch"), numbers, strict=True):
        if not _NUMERIC.match(number):
            raise InvalidVersion(tag, f"{label} version {number!r} is not a non-negative integer")
        if len(number) > 1 and number.startswith("0"):
            raise InvalidVersion(tag, f"{label} version {number!r} has a leading zero")
        values.append(int(number))
    prerelease = _identifiers(tag, pre_text, "prerelease", numeric_rule=True) if dash else ()
    build = _identifiers(tag, build_text, "build metadata", numeric_rule=False) if plus else ()
    return Version(*values, prerelease=prerelease, build=build)


def sorted_by_precedence(items: list, *, version_of, reverse: bool = True) -> list:
    """``items`` ordered by the SemVer precedence of ``version_of(item)`` (a tag string),
    newest first by default; items whose tag does not parse go last, in their given order."""
    valid, invalid = [], []
    for item in items:
        key = _precedence_key(version_of(item))
        if key is None:
            invalid.append(item)
        else:
            valid.append((key, item))
    valid.sort(key=lambda pair: pair[0], reverse=reverse)
    return [item for _, item in valid] + invalid


@lru_cache(maxsize=8192)
def _precedence_key(tag: str) -> tuple | None:
    """The precedence key of ``tag``, None when it does not parse. Remembered: the Releases
    page sorts the same few thousand tags on every request."""
    try:
        return parse(tag).precedence_key()
    except InvalidVersion:
        return None
