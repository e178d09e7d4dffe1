"""ssegate's benchmark suite: a load generator, scenarios, peers and the report (issue 5)."""
