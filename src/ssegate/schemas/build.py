"""Catalogs and model specs from the configuration (`catalogs:`, routes' `value:`).

Everything that can be checked without a registry is checked here, so `ssegate check`
reports it: inline schemas are read and compiled, registry options are validated. Registries
are first asked when the server runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import cast

from ssegate.config.problems import ConfigProblem
from ssegate.config.schema import CatalogConfig, Config, ModelConfig
from ssegate.config.schema_checks import default_framing
from ssegate.schemas.apicurio import ApicurioCatalog
from ssegate.schemas.catalog import Catalog
from ssegate.schemas.framing import Framing
from ssegate.schemas.http_catalog import Credentials
from ssegate.schemas.inline import InlineCatalog, InlineSubject
from ssegate.schemas.mapping import JsonMapping
from ssegate.schemas.model import ModelSpec, compile_decoder
from ssegate.schemas.registry import SchemaRegistryCatalog
from ssegate.schemas.schema import SchemaError


def build_catalogs(config: Config, base_dir: Path) -> dict[str, Catalog]:
    return {name: _catalog(name, catalog, base_dir) for name, catalog in config.catalogs.items()}


def _catalog(name: str, cfg: CatalogConfig, base_dir: Path) -> Catalog:
    where = ("catalogs", name)
    if cfg.type == "inline":
        subjects = {
            subject: InlineSubject(
                kind=schema.type,
                text=schema.schema,
                path=base_dir / schema.file if schema.file is not None else None,
                references=dict(schema.references),
            )
            for subject, schema in cfg.subjects.items()
        }
        try:
            return InlineCatalog(name, subjects)
        except SchemaError as exc:
            raise ConfigProblem((*where, "subjects"), str(exc)) from None
    assert cfg.url is not None  # config checks
    credentials = None
    if cfg.credentials is not None:
        credentials = Credentials(
            cfg.credentials.username, cfg.credentials.password, cfg.credentials.authorization
        )
    trust = base_dir / cfg.trust if cfg.trust is not None else None
    try:
        if cfg.type == "schema-registry":
            return SchemaRegistryCatalog(
                name,
                cfg.url,
                context=cfg.context,
                credentials=credentials,
                ca_file=trust,
                max_age=float(cfg.max_age),
            )
        return ApicurioCatalog(
            name,
            cfg.url,
            group=cfg.group,
            use_id=cfg.use_id,
            id_encoding=cfg.id_encoding,
            credentials=credentials,
            ca_file=trust,
            max_age=float(cfg.max_age),
        )
    except ValueError as exc:
        raise ConfigProblem(where, str(exc)) from None


def model_spec(
    model: ModelConfig, topic: str, config: Config, catalogs: Mapping[str, Catalog]
) -> ModelSpec:
    """A route's value model, its catalog resolved (checked by `config.schema_checks`)."""
    catalog = catalogs[model.catalog] if model.catalog is not None else None
    framing = "none"
    max_age = 300.0
    if model.catalog is not None:
        catalog_config = config.catalogs[model.catalog]
        framing = model.framing or default_framing(catalog_config)
        max_age = float(catalog_config.max_age)
    subject = model.subject
    if subject is None and framing == "none" and catalog is not None:
        subject = f"{topic}-value"  # Confluent's TopicNameStrategy
    return ModelSpec(
        kind=model.model,
        catalog=catalog,
        framing=cast(Framing, framing),
        subject=subject,
        version=model.version,
        message=model.message,
        mapping=JsonMapping(int64=model.int64, unions=model.unions, field_names=model.field_names),
        max_age=max_age,
    )


def check_inline_model(spec: ModelSpec, where: tuple[str | int, ...]) -> None:
    """An inline schema compiles now, or the configuration says why."""
    if not isinstance(spec.catalog, InlineCatalog) or spec.subject is None:
        return
    schema = spec.catalog.subject(spec.subject)
    if schema is None:
        raise ConfigProblem((*where, "subject"), f"no subject {spec.subject!r} in the catalog")
    if schema.kind != spec.kind:
        raise ConfigProblem(where, f"subject {spec.subject!r} is {schema.kind}, not {spec.kind}")
    try:
        compile_decoder(schema, spec.mapping, spec.message)
    except SchemaError as exc:
        raise ConfigProblem(where, str(exc)) from None
