"""Configuration: the typed schema (`schema`) and the loader that fills and checks it.

    from ssegate.config import load_config
    loaded = load_config(Path("ssegate.yaml"))   # ConfigError (exit status 2) when wrong
    loaded.config.listeners, loaded.static_files()

The bottom layer: it imports nothing of ssegate but `ssegate.errors`. Compiling the routes
is the wiring's job (`ssegate.wiring.load` gives the configuration with its routes).
`docs/configuration.md` documents every option.

Modules, one job each: `document` (YAML and `${env.NAME}`), `convert` (typed conversion),
`checks` (checks on the `Config` alone), `problems` (configuration paths and located
errors), `loader` (the steps in order).
"""

from __future__ import annotations

from ssegate.config.loader import (
    LoadedConfig,
    load_config,
    parse_config,
    parse_duration,
    parse_size,
)
from ssegate.config.problems import ConfigPath, ConfigProblem, format_path
from ssegate.config.schema import Config

__all__ = [
    "Config",
    "ConfigPath",
    "ConfigProblem",
    "LoadedConfig",
    "format_path",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_size",
]
