"""Write the course notebooks into notebooks/ (without outputs), from the modules in scripts/course/.

    python scripts/make_notebooks.py          # write every notebook
    python scripts/make_notebooks.py --check  # exit 1 if a committed notebook differs

Edit the modules, not the .ipynb files: the test suite checks that the notebooks in the
repository are exactly what these modules generate, and executes each one in a kernel.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).parent))

from course import MODULES  # noqa: E402  (the course package lives beside this script)

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def generated() -> dict[str, str]:
    """File name -> the notebook's JSON text, as the generator writes it."""
    return {m.FILENAME: nbformat.writes(m.build()) + "\n" for m in MODULES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with notebooks/ instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)
    stale = []
    NOTEBOOK_DIR.mkdir(exist_ok=True)
    for filename, text in generated().items():
        path = NOTEBOOK_DIR / filename
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(filename)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("out of date (run python scripts/make_notebooks.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
