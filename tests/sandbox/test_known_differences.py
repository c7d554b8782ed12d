"""The known differences are written down once, in known_differences.py, and named in
docs/sandbox.md; the two lists stay equal."""

import re
from pathlib import Path

from tests.sandbox.known_differences import DIFFERENCES

DOC = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"


def test_docs_list_every_known_difference():
    named = set(re.findall(r"^\| `([a-z-]+)` \|", DOC.read_text(), flags=re.MULTILINE))
    assert named == {d.name for d in DIFFERENCES}
