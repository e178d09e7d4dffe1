"""A real Apicurio Registry 3.3.3 for tests (`ssegate.devregistry`), one per session, with
the native v3 API's registration as well."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import httpx
import pytest

from ssegate.devregistry import DevRegistry, DevRegistryError, find_java, free_port, registry_home

__all__ = ["ApicurioRegistry", "DevRegistryError", "Registered", "find_java", "free_port",
           "registry_home"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Registered:
    """What the native API gave a new artifact version."""

    global_id: int
    content_id: int
    version: str


class ApicurioRegistry(DevRegistry):
    """The development registry, and the native API's registration."""

    def register_v3(
        self,
        artifact_id: str,
        content: str,
        artifact_type: str,
        *,
        group: str = "default",
        references: Sequence[Mapping[str, str]] = (),
    ) -> Registered:
        """Register through the native v3 API: a new artifact, or a new version of it."""
        content_type = "application/x-protobuf" if artifact_type == "PROTOBUF" else _JSON
        version = {
            "content": {
                "content": content,
                "contentType": content_type,
                "references": list(references),
            }
        }
        base = f"{self.api_url}/groups/{group}/artifacts"
        response = httpx.post(
            base,
            json={
                "artifactId": artifact_id,
                "artifactType": artifact_type,
                "firstVersion": version,
            },
            params={"ifExists": "CREATE_VERSION"},
            timeout=30,
        )
        assert response.status_code == 200, f"v3 register {artifact_id}: {response.text}"
        created = response.json()["version"]
        return Registered(created["globalId"], created["contentId"], created["version"])


_JSON = "application/json"


@pytest.fixture(scope="session", name="apicurio")
def apicurio_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApicurioRegistry]:
    """One real registry for the session (import this fixture into a test module: it is
    the `apicurio` argument); a test that stops it must start it again."""
    registry = ApicurioRegistry(tmp_path_factory.mktemp("apicurio"))
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()
