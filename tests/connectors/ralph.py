"""Ralph 5.1.0, the Open edX LRS from PyPI, run by the tests as a real xAPI LRS (filesystem backend).

Ralph is installed once into its own virtualenv (`.venv/ralph-<hash>`, from the exact versions in
`ralph-requirements.txt`): its pins (fastapi, starlette, uvicorn) are not alcance's. Each `ralph_lrs`
block starts one Ralph process on a free port with a fresh data directory, HTTP Basic credentials and the
`fs` LRS backend, which needs no database server. That backend writes its file once (a second POST fails
with "bulk indexation failed"), so the whole dataset is POSTed in one request before the block runs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.venvs import private_python
from infra.local import parent_death_preexec

REQUIREMENTS = Path(__file__).with_name("ralph-requirements.txt")
# Fields an LRS assigns itself: Ralph sets them on POST.
_LRS_FIELDS = ("stored", "authority", "version")


def ensure_ralph() -> Path:
    """The Python of Ralph's virtualenv, creating it from `ralph-requirements.txt` when missing."""
    return private_python("ralph", REQUIREMENTS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def ralph_lrs(
    statements: Sequence[dict[str, Any]],
    *,
    username: str = "cvf",
    password: str = "secret",  # noqa: S107
) -> AsyncIterator[str]:
    """Serve `statements` from a fresh Ralph LRS; yields its xAPI endpoint (ends with `/`)."""
    python = await asyncio.to_thread(ensure_ralph)
    with tempfile.TemporaryDirectory(prefix="alcance-ralph-") as tmp:
        root = Path(tmp)
        hashing = await asyncio.to_thread(
            subprocess.run,
            [
                str(python),
                "-c",
                "import bcrypt,sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(4)).decode())",
                password,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        hashed = hashing.stdout.strip()
        agent = {"objectType": "Agent", "mbox": f"mailto:{username}@lrs.example.org"}
        (root / "auth.json").write_text(
            json.dumps([{"agent": agent, "scopes": ["all"], "hash": hashed, "username": username}])
        )
        (root / "data").mkdir()
        port = _free_port()
        env = {
            "PATH": "/usr/bin:/bin",
            "RALPH_AUTH_FILE": str(root / "auth.json"),
            "RALPH_RUNSERVER_BACKEND": "fs",
            "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(root / "data"),
            "RALPH_BACKENDS__DATA__FS__DEFAULT_DIRECTORY_PATH": str(root / "data"),
        }
        log = (root / "ralph.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            str(python),
            "-m",
            "uvicorn",
            "ralph.api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=parent_death_preexec(signal.SIGTERM),
        )
        base = f"http://127.0.0.1:{port}"
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        try:
            async with aiohttp.ClientSession(headers={"Authorization": f"Basic {basic}"}) as http:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        async with http.get(f"{base}/__heartbeat__") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    if process.returncode is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"Ralph did not start: {(root / 'ralph.log').read_text()[-2000:]}")
                    await asyncio.sleep(0.2)
                body = [{k: v for k, v in s.items() if k not in _LRS_FIELDS} for s in statements]
                async with http.post(
                    f"{base}/xAPI/statements", json=body, headers={"X-Experience-API-Version": "1.0.3"}
                ) as response:
                    if response.status != 200:
                        raise RuntimeError(
                            f"Ralph refused the dataset: {response.status} {await response.text()}"
                        )
            yield f"{base}/xAPI/"
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            log.close()
