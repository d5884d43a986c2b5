"""Fail when a mutant survives that docs/testing.md does not list as equivalent.

Reads `mutmut results` (after `make mutation`) and the table "Equivalent mutants" in
docs/testing.md, whose first column names mutants as `x_calculate__mutmut_60`, `_69`, …
(a name starting with `_` takes the stem of the one before it). Mutant numbers move when a
mutated module changes: then the run names new survivors, and a person decides again whether
each is equivalent (listing it, with why) or needs a test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "testing.md"


def listed_equivalents(text: str) -> set[str]:
    section = text.split("### Equivalent mutants", 1)[1].split("\n#", 1)[0]
    names: set[str] = set()
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        stem = ""
        for written in re.findall(r"`([^`]+)`", row.split("|")[1]):
            name = stem + written.lstrip("_") if written.startswith("_") and stem else written
            stem = name[: name.rindex("_") + 1]
            names.add(name)
    return names


def survivors() -> set[str]:
    mutmut = shutil.which("mutmut") or "mutmut"
    out = subprocess.run(  # noqa: S603 (a fixed command)
        [mutmut, "results"], capture_output=True, text=True, check=True
    ).stdout
    return {
        line.split(":")[0].strip().rsplit(".", 1)[1]
        for line in out.splitlines()
        if line.strip().endswith(": survived")
    }


def main() -> int:
    equivalent = listed_equivalents(DOC.read_text())
    alive = survivors()
    unexplained = sorted(alive - equivalent)
    print(f"mutation: {len(alive)} survivors, {len(equivalent)} listed as equivalent")
    if unexplained:
        print("survivors not listed as equivalent in docs/testing.md:", *unexplained, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
