"""From a checked configuration to the gateway's parts: its routes, compiled and checked.

`ssegate.config` reads a file and checks it on its own terms; this module compiles each
route (`ssegate.routing.compile_route`) and runs the checks that need compiled routes: a
route may not take a built-in endpoint (`RESERVED_PATHS`) nor match exactly the paths of an
earlier one, and a static URL may be neither a built-in endpoint nor a path some route
matches. They run after the configuration's own checks, routes first then static URLs, and
raise a `ConfigError` in the loader's format: `<file>: routes[0].path: <message>`.

    compiled = load(Path("ssegate.yaml"))   # ConfigError (exit status 2) when wrong
    compiled.config.listeners, compiled.routes, compiled.static_files()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from joserfc.jwk import KeySet

from ssegate.config import Config, ConfigPath, ConfigProblem, LoadedConfig
from ssegate.config.checks import tls_version
from ssegate.config.loader import load_config, parse_config, resolve_static_files
from ssegate.config.schema import TlsCertificate, TlsConfig
from ssegate.errors import ConfigError
from ssegate.guard.authorize import RouteGuard
from ssegate.guard.guard import CredentialSources, JwtGuard
from ssegate.guard.jwt import JwtRules
from ssegate.guard.keys import KeySetError, RemoteKeys, key_set
from ssegate.http.tls import ALPN, CertificateFiles, ServerTls, TlsConfigError, TlsSettings
from ssegate.observe.logs import redact_parameter
from ssegate.routing import RESERVED_PATHS, CompiledRoute, RouteError, compile_route
from ssegate.schemas.build import build_catalogs, check_inline_model, model_spec
from ssegate.schemas.catalog import Catalog
from ssegate.schemas.model import ModelSpec

__all__ = ["CompiledConfig", "compile_config", "load", "parse"]

_BUILT_IN = f"a built-in endpoint ({', '.join(RESERVED_PATHS)})"


@dataclass(frozen=True)
class CompiledConfig:
    """A checked configuration with its compiled routes: what the gateway runs."""

    config: Config
    routes: tuple[CompiledRoute, ...]  # in declaration order
    source: str  # the file as named by the caller, or "<string>"
    base_dir: Path  # the file's directory; static files resolve against it
    # Per listener (same order): its TLS, or None for plain HTTP. Built here, so a key that
    # does not match its certificate fails `ssegate check` too.
    tls: tuple[ServerTls | None, ...] = ()
    # The configured guards, and per route (same order) its guard step or None.
    guards: Mapping[str, JwtGuard] = field(default_factory=dict)
    route_guards: tuple[RouteGuard | None, ...] = ()
    # Schema catalogs by name, and the routes' value models by their key (`route.model`).
    catalogs: Mapping[str, Catalog] = field(default_factory=dict)
    models: Mapping[str, ModelSpec] = field(default_factory=dict)

    def static_files(self) -> dict[str, Path]:
        """URL path -> absolute file path, for every `static` entry."""
        return resolve_static_files(self.config, self.base_dir)


def compile_config(loaded: LoadedConfig) -> CompiledConfig:
    """Compile the routes of `loaded` and check them; ConfigError on the first problem."""
    try:
        guards = _guards(loaded.config)
        routes = _compile_routes(loaded.config)
        _check_static_urls(loaded.config, routes)
        tls = _listeners_tls(loaded.config, loaded.base_dir)
        route_guards = _route_guards(loaded.config, guards)
        catalogs = build_catalogs(loaded.config, loaded.base_dir)
        models = _models(loaded.config, routes, catalogs)
    except ConfigProblem as problem:
        raise ConfigError(problem.render(loaded.source)) from None
    return CompiledConfig(
        config=loaded.config,
        routes=routes,
        source=loaded.source,
        base_dir=loaded.base_dir,
        tls=tls,
        guards=guards,
        route_guards=route_guards,
        catalogs=catalogs,
        models=models,
    )


def _models(
    config: Config, routes: Sequence[CompiledRoute], catalogs: Mapping[str, Catalog]
) -> dict[str, ModelSpec]:
    """The value model of each route that has one, by its key: routes of one topic whose
    models are configured alike share it."""
    models: dict[str, ModelSpec] = {}
    for route, cfg in zip(routes, config.routes, strict=True):
        if route.model is None or cfg.value is None:
            continue
        # With framing `none` and no subject the topic is literal (config checks).
        topic = route.topic.resolve({}) if route.topic.is_literal else ""
        spec = model_spec(cfg.value, topic, config, catalogs)
        check_inline_model(spec, ("routes", route.index, "value"))
        models[route.model] = spec
    return models


def load(path: Path, environ: Mapping[str, str] | None = None) -> CompiledConfig:
    """Read, check and compile the configuration file at `path` (see `load_config`)."""
    return compile_config(load_config(path, environ))


def parse(
    text: str,
    *,
    source: str = "<string>",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> CompiledConfig:
    """Parse, check and compile YAML `text` (see `parse_config`)."""
    return compile_config(parse_config(text, source=source, base_dir=base_dir, environ=environ))


def tls_settings(tls: TlsConfig, base_dir: Path, *, http2: bool = True) -> TlsSettings:
    """A listener's `tls` section with its files resolved against `base_dir`; ALPN offers
    `h2` when the listener speaks HTTP/2."""

    def files(entry: TlsConfig | TlsCertificate) -> CertificateFiles:
        return CertificateFiles(
            base_dir / entry.certificate, base_dir / entry.key, entry.key_passphrase
        )

    return TlsSettings(
        default=files(tls),
        sni={name: files(entry) for name, entry in tls.sni.items()},
        client_auth=tls.client_auth,
        client_ca=base_dir / tls.client_ca if tls.client_ca is not None else None,
        min_version=tls_version(tls.min_version),
        reload_check=float(tls.reload_check),
        alpn=ALPN if http2 else ("http/1.1",),
    )


def _listeners_tls(config: Config, base_dir: Path) -> tuple[ServerTls | None, ...]:
    listeners: list[ServerTls | None] = []
    for index, listener in enumerate(config.listeners):
        if listener.tls is None:
            listeners.append(None)
            continue
        try:
            settings = tls_settings(listener.tls, base_dir, http2=listener.http2.enabled)
            listeners.append(ServerTls(settings))
        except TlsConfigError as exc:
            raise ConfigProblem(("listeners", index, "tls"), str(exc)) from None
    return tuple(listeners)


def _guards(config: Config) -> dict[str, JwtGuard]:
    """A `JwtGuard` per configured guard: inline keys read now (a bad one is a problem of
    the configuration), a JWKS URL, given or discovered from the issuer, left for the server
    to fetch."""
    built: dict[str, JwtGuard] = {}
    for name, cfg in config.guards.items():
        keys: KeySet | RemoteKeys
        if isinstance(cfg.keys, list):
            try:
                keys = key_set(cfg.keys, cfg.algorithms)
            except KeySetError as exc:
                raise ConfigProblem(("guards", name, "keys"), str(exc)) from None
        elif cfg.keys is not None:
            keys = RemoteKeys(cfg.keys, cfg.algorithms)
        else:  # OpenID discovery, else <issuer>/.well-known/jwks.json (docs/security.md)
            keys = RemoteKeys.discover(cfg.issuer, cfg.algorithms)
        rules = JwtRules(
            issuer=cfg.issuer,
            audience=cfg.audience,
            algorithms=tuple(cfg.algorithms),
            roles_claim=cfg.roles,
            identity_claim=cfg.identity,
            attributes=dict(cfg.attributes),
            leeway=float(cfg.leeway),
        )
        sources = CredentialSources(
            cookie=cfg.credentials.cookie,
            header=cfg.credentials.header,
            query=cfg.credentials.query,
        )
        if cfg.credentials.query is not None:
            redact_parameter(cfg.credentials.query)  # a token: never in a logged URL
        challenge = float(cfg.challenge) if cfg.challenge is not None else None
        built[name] = JwtGuard(name, rules, keys, sources, challenge)
    return built


def _route_guards(config: Config, guards: Mapping[str, JwtGuard]) -> tuple[RouteGuard | None, ...]:
    steps: list[RouteGuard | None] = []
    for route in config.routes:
        step = None
        for name, roles in route.guarded.items():  # one at most (config checks)
            step = RouteGuard(guards[name], frozenset(roles), hide=route.unauthorized == 404)
        steps.append(step)
    return tuple(steps)


def _compile_routes(config: Config) -> tuple[CompiledRoute, ...]:
    compiled: list[CompiledRoute] = []
    shapes: dict[str, CompiledRoute] = {}
    attributes = {name: frozenset(g.attributes) for name, g in config.guards.items()}
    for index, cfg in enumerate(config.routes):
        try:
            route = compile_route(index, cfg, attributes)
        except RouteError as exc:
            raise ConfigProblem(("routes", index, *exc.path), exc.message) from exc
        where: ConfigPath = ("routes", index, "path")
        if route.path in RESERVED_PATHS:
            raise ConfigProblem(where, f"{route.path!r} is {_BUILT_IN}")
        earlier = shapes.get(route.template.shape)
        if earlier is not None:
            same = "duplicates" if earlier.path == route.path else "matches the same paths as"
            raise ConfigProblem(
                where,
                f"{route.path!r} {same} routes[{earlier.index}].path {earlier.path!r} "
                "(the first route wins, so this one would never match)",
            )
        shapes[route.template.shape] = route
        compiled.append(route)
        if route.client_certificate and not any(
            listener.tls is not None and listener.tls.client_auth != "none"
            for listener in config.listeners
        ):
            raise ConfigProblem(
                ("routes", index),
                "uses the client certificate (${tls.client.<field>}), but no listener asks "
                "for one (listeners[].tls.client_auth)",
            )
    return tuple(compiled)


def _check_static_urls(config: Config, routes: tuple[CompiledRoute, ...]) -> None:
    for url in config.static:
        where: ConfigPath = ("static", url)
        if url in RESERVED_PATHS:
            raise ConfigProblem(where, f"{url!r} is {_BUILT_IN}")
        for route in routes:
            if route.template.match(url) is not None:
                raise ConfigProblem(
                    where,
                    f"{url!r} is also matched by routes[{route.index}].path {route.path!r}; "
                    "a URL serves a file or a stream, not both",
                )
