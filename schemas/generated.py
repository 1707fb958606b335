"""Documents generated from code and committed (`schemas/asyncapi.json`, `web/openapi.json`).

One exact text per document, so the committed file can be compared byte for byte; a command line that
rewrites it, or with `--check` only reports that it is stale (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def document_text(document: Mapping[str, Any]) -> str:
    """The committed text of a document: JSON indented by two, non-ASCII kept, one final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def is_stale(path: Path, text: str) -> bool:
    """Whether the committed file at `path` is missing or differs from `text`."""
    return not path.is_file() or path.read_text(encoding="utf-8") != text


def rewrite_or_check(
    argv: list[str] | None, *, prog: str, description: str | None, path: Path, render: Callable[[], str]
) -> int:
    """Command line: write `render()` to `path`, or with `--check` fail when `path` is stale."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--check", action="store_true", help="only report whether the file is stale")
    args = parser.parse_args(argv)
    if args.check:
        if is_stale(path, render()):
            print(f"stale: {path}", file=sys.stderr)
            return 1
        return 0
    path.write_text(render(), encoding="utf-8")
    print(f"wrote {path}")
    return 0
