"""Reading the markdown tables of report.md back, to check them cell by cell."""

from __future__ import annotations


def section_table(markdown: str, title: str) -> list[dict[str, str]]:
    """The rows of the first table after the heading that starts with `title`, as header -> cell."""
    lines = markdown.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("## ") and line[3:].startswith(title))
    table = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            table.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif table:
            break
    header, _, *rows = table
    return [dict(zip(header, row, strict=True)) for row in rows]


def section_titles(markdown: str) -> list[str]:
    return [line[3:] for line in markdown.split("\n") if line.startswith("## ")]
