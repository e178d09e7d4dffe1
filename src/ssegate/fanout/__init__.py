"""The fan-out: one shared source per topic, a ring of recent records, and the streams
that read from it (docs/architecture.md). Knows sources only through `ssegate.sources`."""
