"""A real OpenID provider for tests: panva's `oidc-provider` (npm), the version pinned in
tests/support/oidc/package.json and its lock file, installed with npm on first use into
ssegate's cache (`~/.cache/ssegate/tools/oidc-provider-<version>/`), then run with Node as
tests/support/oidc/provider.mjs on a free port of 127.0.0.1.

Its tokens are OAuth 2.0 client-credentials access tokens: RS256 JWTs whose `aud` is the
resource asked for, with `sub` and `client_id` (both the client's id) and `scope`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from ssegate.devkafka import default_cache_root
from tests.support.waiting import WaitTimeout, until_sync

SOURCE = Path(__file__).parent / "oidc"
# oidc-provider 9 supports Node.js 22 LTS and later only (its lib/index.js warns
# "Unsupported runtime" on older ones; neither 8 nor 9 declares `engines`); the machines
# that run these tests have Node 20, so the pin is 8's newest release, which supports
# Node 18 LTS and later.
VERSION = json.loads((SOURCE / "package.json").read_text())["dependencies"]["oidc-provider"]
NPM_TIMEOUT = 600.0
START_TIMEOUT = 30.0


class OidcProviderError(RuntimeError):
    """oidc-provider could not be installed or started; the message says what was tried."""


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        raise OidcProviderError(f"`{name}` is not on PATH; {hint}")
    return found


def install_directory() -> Path:
    """Where oidc-provider is installed: done on first use (npm, the registry), once; two
    pytest processes that need it at the same time wait for each other."""
    tools = default_cache_root() / "tools"
    target = tools / f"oidc-provider-{VERSION}"
    if (target / ".complete").is_file():
        return target
    tools.mkdir(parents=True, exist_ok=True)
    with (tools / f"oidc-provider-{VERSION}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").is_file():  # the other process installed it meanwhile
            return target
        npm = _tool("npm", "install Node.js 18 or newer with npm (Debian: apt-get install npm)")
        with tempfile.TemporaryDirectory(dir=tools, prefix=".oidc-provider-") as scratch:
            work = Path(scratch) / "install"
            work.mkdir()
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(SOURCE / name, work / name)
            command = [npm, "install", "--no-audit", "--no-fund", "--omit=dev"]
            try:
                result = subprocess.run(
                    command,
                    cwd=work,
                    capture_output=True,
                    text=True,
                    timeout=NPM_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise OidcProviderError(
                    f"installing oidc-provider {VERSION} took over {NPM_TIMEOUT:g} s; tried "
                    f"`{' '.join(command)}` in a copy of {SOURCE}"
                ) from exc
            if result.returncode != 0:
                said = (result.stdout + result.stderr).strip().splitlines()[-25:]
                raise OidcProviderError(
                    f"installing oidc-provider {VERSION} failed (npm exit status "
                    f"{result.returncode}).\nTried, in a copy of {SOURCE}:\n  "
                    f"{' '.join(command)}\nnpm said:\n  "
                    + "\n  ".join(said or ["(nothing)"])
                    + "\nCheck that this machine reaches the npm registry and run it again."
                )
            (work / ".complete").write_text(f"{VERSION}\n")
            if target.exists():  # an incomplete earlier attempt
                shutil.rmtree(target)
            work.rename(target)
    return target


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str
    scope: str  # the scopes it may ask for, space-separated


@dataclass
class OidcProvider:
    """A running provider: its issuer, its JWKS URL (from its discovery document), and
    client-credentials tokens on demand."""

    issuer: str
    jwks_uri: str
    token_endpoint: str
    process: subprocess.Popen[bytes]
    log_file: Path

    def token(self, client_id: str, client_secret: str, scope: str, resource: str) -> str:
        """An access token for the client (client credentials, the secret sent with HTTP
        Basic), for `resource` (its `aud`); AssertionError with the provider's answer when
        it refuses."""
        answer = httpx.post(
            self.token_endpoint,
            data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
            auth=(client_id, client_secret),
            timeout=10,
        )
        assert answer.status_code == 200, f"token endpoint: {answer.status_code} {answer.text}"
        body = answer.json()
        assert body["token_type"] == "Bearer", body
        token: str = body["access_token"]
        return token

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


@contextlib.contextmanager
def running_provider(
    directory: Path,
    *,
    audience: str,
    scopes: Sequence[str],
    clients: Sequence[Client],
    ttl: int = 300,
) -> Iterator[OidcProvider]:
    """Start oidc-provider (installing it first if needed); stopped when the block ends."""
    node = _tool("node", "install Node.js 18 or newer (Debian: apt-get install nodejs)")
    installed = install_directory()
    directory.mkdir(parents=True, exist_ok=True)
    ready_file = directory / "issuer"
    config = {
        "audience": audience,
        "scopes": list(scopes),
        "ttl": ttl,
        "clients": [vars(client) for client in clients],
        "ready_file": str(ready_file),
    }
    config_file = directory / "provider.json"
    config_file.write_text(json.dumps(config, indent=2))
    log_file = directory / "oidc-provider.log"
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [node, str(SOURCE / "provider.mjs"), str(installed), str(config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NODE_ENV": "development"},
        )
    try:
        provider = _wait_until_answering(process, ready_file, log_file)
        yield provider
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_answering(
    process: subprocess.Popen[bytes], ready_file: Path, log_file: Path
) -> OidcProvider:
    def discovered() -> OidcProvider | None:
        if process.poll() is not None:
            raise OidcProviderError(
                f"oidc-provider exited {process.returncode}:\n"
                + log_file.read_text(errors="replace")
            )
        if not ready_file.exists():
            return None
        issuer = ready_file.read_text().strip()
        answer = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2)
        if answer.status_code != 200:
            return None
        document = answer.json()
        return OidcProvider(
            issuer=issuer,
            jwks_uri=document["jwks_uri"],
            token_endpoint=document["token_endpoint"],
            process=process,
            log_file=log_file,
        )

    try:
        provider = until_sync(
            discovered,
            START_TIMEOUT,
            interval=0.1,
            message="oidc-provider's /.well-known/openid-configuration to answer 200",
            ignoring=(httpx.HTTPError,),
        )
    except WaitTimeout as exc:
        log = log_file.read_text(errors="replace")
        raise WaitTimeout(f"{exc}\noidc-provider log:\n{log}") from None
    assert provider is not None  # until_sync returns an accepted (truthy) value
    return provider
