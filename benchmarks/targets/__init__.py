"""The servers under test: ssegate and its peers, each started and measured the same way."""
