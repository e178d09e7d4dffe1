"""The benchmark scenarios, each a function of (run context, target list) -> results."""
