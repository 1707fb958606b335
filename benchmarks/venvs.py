"""Private virtualenvs for programs alcance is measured or tested against (the peers, Ralph).

Their pins are not alcance's, so each gets `.venv/<name>-<hash>`, filled once from the exact versions
in a requirements file. The hash is that file's: a changed pin makes a new virtualenv, so an old one is
never half-upgraded. Runs in alcance's own environment (benchmarks and tests call it).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def private_python(name: str, requirements: Path) -> Path:
    """The Python of `name`'s virtualenv for `requirements`, creating and filling it first when missing."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    venv = REPO_ROOT / ".venv" / f"{name}-{digest}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        # An interrupted install leaves no marker: start that virtualenv again from nothing.
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(requirements),
            ],
            check=True,
        )
        marker.touch()
    return python
