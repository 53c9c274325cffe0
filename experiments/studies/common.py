"""Plumbing shared by the stand-alone study scripts (``python -m experiments.<study>``).

- :func:`study_parser` — the command line of a study: its docstring as help, and ``--smoke``;
- :func:`keep_torch_threads` — run a study's ``_main(argv)`` and restore torch's thread count after it
  (the studies set it from ``--threads`` while they run);
- :func:`write_study` — print a study's markdown table and its wall-clock time, and write ``table.md``
  and ``results.json`` into the study's output folder.

Figures are drawn with :func:`experiments.plots.pyplot` and written by :func:`experiments.plots.save_figure`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

__all__ = ["study_parser", "keep_torch_threads", "write_study"]


def study_parser(doc: str, smoke_help: str | None = None) -> argparse.ArgumentParser:
    """An argument parser described by the first paragraph of ``doc`` (the rest is shown verbatim in
    ``--help``) with a ``--smoke`` flag (the study's quick pipeline check)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help=smoke_help)
    return ap


def keep_torch_threads(main: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> Any:
    """``main(argv)``, with torch's thread count set back to its value before the call however it ends."""
    import torch

    threads = torch.get_num_threads()
    try:
        return main(argv)
    finally:
        torch.set_num_threads(threads)


def write_study(out: str | Path, md: str, results: dict[str, Any], wall: float, *, indent: int | None = None) -> Path:
    """Print ``md`` and ``wall`` (seconds); write ``md`` to ``out/table.md`` and ``results`` to
    ``out/results.json`` (numbers JSON does not know, e.g. numpy scalars, as floats; ``indent`` as in
    :func:`json.dumps`). Creates ``out`` and returns it as a Path."""
    print(md)
    print(f"wall-clock {wall:.0f} s")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(md + "\n")
    (out / "results.json").write_text(json.dumps(results, default=float, indent=indent))
    return out
