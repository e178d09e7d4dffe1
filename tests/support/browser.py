"""Debian's Chromium for browser tests (no browser downloads work here): installed by apt
when missing, then driven by playwright."""

from __future__ import annotations

import shutil
import subprocess


def chromium_binary() -> str:
    binary = shutil.which("chromium")
    if binary is None:
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "chromium"],
        ):
            subprocess.run(
                command,
                check=True,
                capture_output=True,
                timeout=900,
                env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            )
        binary = shutil.which("chromium")
    assert binary is not None, "chromium is not installed and apt-get did not install it"
    return binary
