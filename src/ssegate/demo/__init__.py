"""`ssegate demo`: a local Kafka, a stock-price producer and the gateway, in one command."""

from ssegate.demo.runner import run_demo

__all__ = ["run_demo"]
