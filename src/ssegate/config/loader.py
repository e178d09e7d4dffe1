"""Loading a configuration file: the steps in order, each stopping at its first error.

1. Read the file as UTF-8 and parse its YAML (`document.parse_document`).
2. Substitute `${env.NAME}` in string values (`document.substitute_env`).
3. Convert to the typed `Config` (`convert.convert`).
4. Check what types cannot say, on the `Config` alone (`checks.check_config`).

Every error is a `ConfigError` whose text is one line, `<file>: <path>: <message>` (the
path written as `routes[0].filters[1].key`). Routes are compiled, and checked against each
other, by `ssegate.wiring`, which takes the `LoadedConfig` made here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ssegate.config.checks import check_config
from ssegate.config.convert import convert, parse_duration, parse_size
from ssegate.config.document import parse_document, substitute_env
from ssegate.config.problems import ConfigProblem
from ssegate.config.schema import Config
from ssegate.errors import ConfigError

__all__ = [
    "LoadedConfig",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_size",
    "resolve_static_files",
]


@dataclass(frozen=True)
class LoadedConfig:
    """A checked configuration, with where it came from."""

    config: Config
    source: str  # the file as named by the caller, or "<string>"
    base_dir: Path  # the file's directory; static files resolve against it

    def static_files(self) -> dict[str, Path]:
        """URL path -> absolute file path, for every `static` entry."""
        return resolve_static_files(self.config, self.base_dir)


def resolve_static_files(config: Config, base_dir: Path) -> dict[str, Path]:
    """URL path -> absolute file path, for every `static` entry of `config`."""
    return {url: base_dir / file for url, file in config.static.items()}


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, parse and check the file at `path`; ConfigError on the first problem."""
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{source}: cannot read the file: {reason}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{source}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})"
        ) from exc
    return parse_config(text, source=source, base_dir=path.absolute().parent, environ=environ)


def parse_config(
    text: str,
    *,
    source: str = "<string>",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Parse and check YAML `text`; `source` names it in messages, `base_dir` anchors files.

    `base_dir` defaults to the current directory and `environ` to `os.environ`.
    """
    base = (base_dir if base_dir is not None else Path.cwd()).absolute()
    env = os.environ if environ is None else environ
    document = parse_document(text, source)
    try:
        config = convert(substitute_env(document, env))
        check_config(config, base)
    except ConfigProblem as problem:
        raise ConfigError(problem.render(source)) from problem.__cause__
    except RecursionError:
        raise ConfigError(f"{source}: the document is nested too deeply") from None
    return LoadedConfig(config=config, source=source, base_dir=base)
