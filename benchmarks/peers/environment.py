"""The peers' virtualenv, `.venv/peers-<hash>`, made once from the exact versions in `requirements.txt`.

Runs in alcance's own environment (the benchmark and the tests call it); the peers' dependencies never
enter alcance's lock file. The hash of `requirements.txt` names the virtualenv, so a changed pin gets a
new one and an old one is never half-upgraded.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
REPO_ROOT = Path(__file__).resolve().parents[2]


def peers_python() -> Path:
    """The Python of the peers' virtualenv, creating and filling it first when it is missing."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = REPO_ROOT / ".venv" / f"peers-{digest}"
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
                str(REQUIREMENTS),
            ],
            check=True,
        )
        marker.touch()
    return python
