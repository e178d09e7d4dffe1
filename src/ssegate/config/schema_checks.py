"""Checks of `catalogs` and of the routes' models (docs/schemas.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NoReturn

from ssegate.config.problems import ConfigPath, ConfigProblem
from ssegate.config.schema import CatalogConfig, Config, ModelConfig, RouteConfig

CATALOG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
# Options that apply to one catalog type only.
_ONLY: dict[str, tuple[str, ...]] = {
    "subjects": ("inline",),
    "url": ("schema-registry", "apicurio"),
    "credentials": ("schema-registry", "apicurio"),
    "trust": ("schema-registry", "apicurio"),
    "context": ("schema-registry",),
}
_APICURIO_DEFAULTS = {"group": "default", "use_id": "globalId", "id_encoding": "8-byte"}


def _fail(path: ConfigPath, message: str) -> NoReturn:
    raise ConfigProblem(path, message)


def check_schemas(config: Config, base_dir: Path) -> None:
    for name, catalog in config.catalogs.items():
        _check_catalog(("catalogs", name), name, catalog, base_dir)
    for index, route in enumerate(config.routes):
        if route.value is not None:
            _check_model(("routes", index, "value"), route.value, route, config)
        if route.on_invalid != "skip" and route.value is None:
            _fail(("routes", index, "on_invalid"), "applies to routes with a value model only")


def _check_catalog(where: ConfigPath, name: str, catalog: CatalogConfig, base_dir: Path) -> None:
    if not CATALOG_NAME.fullmatch(name):
        _fail(where, "a catalog name is a letter, then letters, digits, '_' or '-'")
    for option, types in _ONLY.items():
        value = getattr(catalog, option)
        if value and catalog.type not in types:
            _fail((*where, option), f"applies to {' and '.join(types)} catalogs only")
    if catalog.type != "apicurio":
        for option, default in _APICURIO_DEFAULTS.items():
            if getattr(catalog, option) != default:
                _fail((*where, option), "applies to apicurio catalogs only")
    if catalog.type == "inline":
        if not catalog.subjects:
            _fail((*where, "subjects"), "an inline catalog needs at least one subject")
        for subject, schema in catalog.subjects.items():
            at = (*where, "subjects", subject)
            if (schema.schema is None) == (schema.file is None):
                _fail(at, "give the schema as `schema` (text) or `file`, one of them")
            if schema.file is not None and not (base_dir / schema.file).is_file():
                _fail((*at, "file"), f"{base_dir / schema.file} is not a file")
            for imported, target in schema.references.items():
                if target not in catalog.subjects:
                    _fail((*at, "references", imported), f"no subject {target!r} here")
        return
    if not catalog.url or not catalog.url.startswith(("http://", "https://")):
        _fail((*where, "url"), "the registry's URL, http:// or https://")
    if float(catalog.max_age) <= 0:
        _fail((*where, "max_age"), "must be greater than 0")
    if catalog.trust is not None and not (base_dir / catalog.trust).is_file():
        _fail((*where, "trust"), f"{base_dir / catalog.trust} is not a file")
    credentials = catalog.credentials
    if credentials is not None:
        basic = credentials.username is not None or credentials.password is not None
        if basic and credentials.authorization is not None:
            _fail((*where, "credentials"), "username and password, or authorization: not both")
        if credentials.password is not None and credentials.username is None:
            _fail((*where, "credentials", "username"), "required with a password")


def _check_model(where: ConfigPath, model: ModelConfig, route: RouteConfig, config: Config) -> None:
    if model.catalog is None:
        if model.model != "json":
            article = "an" if model.model == "avro" else "a"
            _fail((*where, "catalog"), f"{article} {model.model} model needs a catalog")
        if model.framing not in (None, "none") or model.subject is not None:
            _fail(where, "framing and subject need a catalog")
        return
    catalog = config.catalogs.get(model.catalog)
    if catalog is None:
        known = ", ".join(sorted(config.catalogs)) or "none are configured"
        _fail((*where, "catalog"), f"no such catalog (catalogs: {known})")
    framing = model.framing or default_framing(catalog)
    if catalog.type == "inline" and framing != "none":
        _fail((*where, "framing"), "an inline catalog has no ids: records cannot name one")
    if framing == "none" and model.subject is None and "${" in route.topic:
        _fail(
            (*where, "subject"),
            "required when records carry no schema id and the topic is a template"
            " (otherwise `<topic>-value`)",
        )
    if model.message is not None and model.model != "protobuf":
        _fail((*where, "message"), "applies to protobuf models only")
    if model.unions != "plain" and model.model != "avro":
        _fail((*where, "unions"), "applies to avro models only")
    if model.field_names != "proto" and model.model != "protobuf":
        _fail((*where, "field_names"), "applies to protobuf models only")
    if isinstance(model.version, int) and model.version < 1:
        _fail((*where, "version"), "a version number is 1 or more, or `latest`")


def default_framing(catalog: CatalogConfig) -> str:
    """How records name their schema when a model does not say: the catalog's way."""
    if catalog.type == "schema-registry":
        return "confluent"
    if catalog.type == "apicurio":
        return "apicurio" if catalog.id_encoding == "8-byte" else "apicurio-4"
    return "none"
