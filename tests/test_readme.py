"""The README is the front door: its set-up commands must be the Makefile's, its test command the
one CI runs, it stays small (the rest lives in the guide under docs/), and its links resolve.

Plain text checks: no Keras, no app import, well under a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"
CI_RUN = ROOT / ".ci" / "run"
DOCS = ROOT / "docs"
MAX_README_BYTES = 12_000

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
# [text](target) and ![alt](target), the target up to a space (a title may follow) or ")"
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SRC = re.compile(r"""<(?:img|a)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.IGNORECASE)
TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)", re.MULTILINE)


def readme() -> str:
    return README.read_text(encoding="utf-8")


def code_lines(text: str) -> list[str]:
    """Every line of every fenced code block, the comment after `#` dropped, blank lines left out."""
    lines = []
    for block in FENCE.findall(text):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                lines.append(line)
    return lines


def make_targets() -> set[str]:
    return set(TARGET.findall(MAKEFILE.read_text(encoding="utf-8")))


def setup_commands() -> dict[str, str]:
    """The README's `make run` and `make test` lines, as written in its code blocks."""
    found = {}
    for line in code_lines(readme()):
        words = line.split()
        if len(words) == 2 and words[0] == "make" and words[1] in ("run", "test"):
            found.setdefault(words[1], line)
    return found


def test_readme_shows_both_setup_commands() -> None:
    commands = setup_commands()
    assert set(commands) == {"run", "test"}, f"README.md's code blocks should show `make run` and `make test`, found {commands}"


@pytest.mark.parametrize("target", ["run", "test"])
def test_setup_commands_are_makefile_targets(target: str) -> None:
    assert target in setup_commands(), f"README.md shows no `make {target}`"
    assert target in make_targets(), f"README.md says `make {target}`, but the Makefile has no {target!r} target"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = [
        line.strip()
        for line in CI_RUN.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
        and not line.strip().startswith(("set ", "cd "))
    ]
    assert commands == [setup_commands()["test"]], f".ci/run runs {commands}, the README's test command is make test"


def test_make_test_runs_the_backend_neutral_tests_on_jax_too() -> None:
    text = MAKEFILE.read_text(encoding="utf-8")
    recipe = text[text.index("\ntest:"):].split("\n\n", 1)[0]
    assert 'KERAS_BACKEND=jax $(BIN)/python -m pytest -m "not tensorflow_only and not slow" $(JAX_TESTS)' in recipe
    files = re.search(r"^JAX_TESTS := (.*?)(?<!\\)$", text, re.MULTILINE | re.DOTALL).group(1).replace("\\", " ").split()
    assert files and [f for f in files if not (ROOT / f).is_file()] == [], "JAX_TESTS names a test file that is gone"


def test_readme_is_small() -> None:
    size = len(README.read_bytes())
    assert size <= MAX_README_BYTES, f"README.md is {size:,} bytes (at most {MAX_README_BYTES:,}): move detail into docs/"


def test_no_references_to_files_users_do_not_have() -> None:
    pages = [README, *sorted(DOCS.rglob("*.md"))]
    offenders = [str(p.relative_to(ROOT)) for p in pages if "../shared" in p.read_text(encoding="utf-8")]
    assert not offenders, f"these pages point into ../shared, which users do not have: {offenders}"


def relative_links(text: str) -> list[str]:
    targets = LINK.findall(text) + HTML_SRC.findall(text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.IGNORECASE) and not t.startswith("#")]


def test_readme_relative_links_resolve() -> None:
    links = relative_links(readme())
    assert links, "README.md should link to the guide under docs/"
    missing = [t for t in links if not (README.parent / t.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_link_finder_sees_links_and_images() -> None:
    text = '[a](docs/x.md#y) ![b](docs/s.svg "t") [c](https://example.com) [d](#top) <img src="p.png">'
    assert relative_links(text) == ["docs/x.md#y", "docs/s.svg", "p.png"]
