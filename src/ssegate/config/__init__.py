"""Configuration: the typed schema (`schema`) and the loader that fills and checks it.

    from ssegate.config import load_config
    loaded = load_config(Path("ssegate.yaml"))   # ConfigError (exit status 2) when wrong
    loaded.config.listeners, loaded.routes, loaded.static_files()

`docs/configuration.md` documents every option.
"""

from __future__ import annotations

from ssegate.config.loader import (
    LoadedConfig,
    load_config,
    parse_config,
    parse_duration,
    parse_size,
)
from ssegate.config.schema import Config

__all__ = ["Config", "LoadedConfig", "load_config", "parse_config", "parse_duration", "parse_size"]
