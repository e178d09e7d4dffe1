"""What the benchmark installs for itself, so a fresh machine (and CI) can run it.

- `benchmarks/.venv-peers`: the Python stack peer (requirements in peers/python_stack/).
- `benchmarks/.venv-tools`: matplotlib (plots) and py-spy (the profile).
- Debian `nginx` and `libnginx-mod-nchan`, with apt-get, when nginx or the module is missing.

Each step is skipped when its stamp (a hash of its requirements) says it is done, and
raises `InstallError` with the command's last lines when it fails: a peer that cannot be
installed is reported, never silently skipped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PEERS_VENV = BENCH / ".venv-peers"
TOOLS_VENV = BENCH / ".venv-tools"
PEER_REQUIREMENTS = BENCH / "peers" / "python_stack" / "requirements.txt"
TOOLS_REQUIREMENTS = BENCH / "tools-requirements.txt"
NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
APT_PACKAGES = ["nginx", "libnginx-mod-nchan"]


class InstallError(RuntimeError):
    """An install step failed; the message says which command and why."""


def _run(command: list[str], what: str, timeout: float = 600) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{what}: {' '.join(command)} failed: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise InstallError(f"{what}: {' '.join(command)} exited {done.returncode}:\n{tail}")


def _venv(path: Path, requirements: Path) -> Path:
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    stamp = path / ".bench-stamp"
    python = path / "bin" / "python"
    if stamp.exists() and stamp.read_text() == digest and python.exists():
        return path
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--clear", str(path)], f"creating {path.name}")
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
        f"installing {requirements.name} into {path.name}",
    )
    stamp.write_text(digest)
    return path


def peers_venv() -> Path:
    return _venv(PEERS_VENV, PEER_REQUIREMENTS)


def tools_venv() -> Path:
    return _venv(TOOLS_VENV, TOOLS_REQUIREMENTS)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (str(p) for p in (Path("/usr/sbin/nginx"),) if p.exists()), None
    )


def nchan() -> str:
    """The nginx binary, with the nchan module installed; apt-get installs both if needed."""
    binary = nginx_binary()
    if binary and NCHAN_MODULE.exists():
        return binary
    if os.geteuid() != 0:
        raise InstallError(
            "nginx with nchan is missing and installing it needs root "
            f"(apt-get install {' '.join(APT_PACKAGES)})"
        )
    if not shutil.which("apt-get"):
        raise InstallError("nginx with nchan is missing and there is no apt-get here")
    _run(["apt-get", "update", "-q"], "apt-get update")
    _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES], "apt-get")
    binary = nginx_binary()
    if not binary or not NCHAN_MODULE.exists():
        raise InstallError(
            f"apt-get installed {APT_PACKAGES} but nginx or {NCHAN_MODULE} is absent"
        )
    return binary
