from __future__ import annotations

import pytest

from deployments import semver

# semver.org §11's example chain, plus releases around it, lowest first.
ORDERED = [
    "v0.9.9",
    "v1.0.0-0",
    "v1.0.0-2",
    "v1.0.0-10",
    "v1.0.0-alpha",
    "v1.0.0-alpha.1",
    "v1.0.0-alpha.beta",
    "v1.0.0-beta",
    "v1.0.0-beta.2",
    "v1.0.0-beta.11",
    "v1.0.0-rc.1",
    "v1.0.0",
    "v1.0.1-rc.1",
    "v1.0.1",
    "v1.2.0",
    "v1.10.0",
    "v2.0.0",
]


def test_precedence_follows_semver_across_tricky_cases():
    shuffled = sorted(ORDERED, key=lambda tag: hash(tag[::-1]))
    assert semver.sorted_by_precedence(shuffled, version_of=str, reverse=False) == ORDERED


def test_numeric_identifiers_compare_numerically_and_below_alphanumeric():
    key = lambda tag: semver.parse(tag).precedence_key()  # noqa: E731
    assert key("1.0.0-rc.2") < key("1.0.0-rc.10")  # not "10" < "2" as strings
    assert key("1.0.0-999") < key("1.0.0-a")
    assert key("1.0.0-alpha") < key("1.0.0-alpha.0")  # a shorter set ranks lower
    assert key("1.0.0-rc.1") < key("1.0.0")  # a prerelease ranks below its release


def test_build_metadata_is_ignored_for_precedence_but_kept():
    a, b = semver.parse("v1.0.0+build.1"), semver.parse("1.0.0+zzz")
    assert a.precedence_key() == b.precedence_key() == semver.parse("1.0.0").precedence_key()
    assert str(a) == "1.0.0+build.1" and a.build == ("build", "1")
    assert not a.is_prerelease and semver.parse("v1.0.0-rc.1+b").is_prerelease


def test_newest_first_puts_invalid_tags_last_in_their_order():
    tags = ["latest", "v1.0.0", "v2.0.0-rc.1", "nightly", "v1.9.0"]
    assert semver.sorted_by_precedence(tags, version_of=str) == [
        "v2.0.0-rc.1",
        "v1.9.0",
        "v1.0.0",
        "latest",
        "nightly",
    ]


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("release-5", "expected MAJOR.MINOR.PATCH"),
        ("v1.2", "expected MAJOR.MINOR.PATCH"),
        ("v1.2.3.4", "expected MAJOR.MINOR.PATCH"),
        ("v01.2.3", "major version '01' has a leading zero"),
        ("v1.x.3", "minor version 'x' is not a non-negative integer"),
        ("v1.2.3-rc.01", "numeric prerelease identifier '01' has a leading zero"),
        ("v1.2.3-rc..1", "prerelease has an empty identifier"),
        ("v1.2.3-rc_1", "may only use ASCII letters, digits and '-'"),
        ("v1.2.3+", "build metadata has an empty identifier"),
        (" v1.2.3", "whitespace"),
        ("V1.2.3", "major version 'V1' is not a non-negative integer"),
    ],
)
def test_invalid_tags_say_why(tag, reason):
    with pytest.raises(semver.InvalidVersion) as info:
        semver.parse(tag)
    assert reason in info.value.reason


def test_build_metadata_may_have_leading_zeros():
    assert semver.parse("1.0.0+001").build == ("001",)
