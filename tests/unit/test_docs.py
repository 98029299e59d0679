"""The README and docs/ hold together: every relative link reaches a file (and a heading,
when it names one), and every setting the service reads is documented."""

from __future__ import annotations

import re
from pathlib import Path

from billing_app.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def anchors(document: Path) -> set[str]:
    """GitHub's ids for the headings of a Markdown file."""
    found = set()
    for line in FENCE.sub("", document.read_text()).splitlines():
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            text = re.sub(r"[`*_]", "", heading.group(1)).strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return found


def relative_links(document: Path) -> list[str]:
    text = FENCE.sub("", document.read_text())
    return [
        target
        for target in LINK.findall(text)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto: ...
    ]


def broken_links(document: Path) -> list[str]:
    broken = []
    for target in relative_links(document):
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.exists():
            broken.append(f"{document.name}: {target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{document.name}: {target} (no such heading)")
    return broken


def test_every_relative_link_in_the_readme_and_docs_resolves():
    assert (ROOT / "docs").is_dir()
    assert sum(len(relative_links(document)) for document in DOCUMENTS) > 20
    broken = [problem for document in DOCUMENTS for problem in broken_links(document)]
    assert not broken, "\n".join(broken)


def test_a_broken_link_or_heading_is_found(tmp_path):
    (tmp_path / "other.md").write_text("# A heading: with `code`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a-heading-with-code) [gone](missing.md) [bad](other.md#nowhere)"
        " [web](https://example.com/x.md)\n```\n[in a fence](fenced.md)\n```\n"
    )
    assert broken_links(page) == [
        "page.md: missing.md (no such file)",
        "page.md: other.md#nowhere (no such heading)",
    ]


def test_every_setting_is_in_the_configuration_table():
    operations = (ROOT / "docs" / "operations.md").read_text()
    table = operations[operations.index("## Configuration") :]
    table = table[: table.index("\n## ")]
    first_cells = re.findall(r"^\| ([^|]+) \|", table, re.M)
    named = {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}
    missing = [setting.name for setting in SETTINGS if setting.name not in named]
    assert not missing, f"settings missing from docs/operations.md: {missing}"
