"""Peer implementations the benchmark builds itself (the Python stack)."""
