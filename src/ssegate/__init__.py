"""ssegate: stream Apache Kafka topics to HTTP clients as Server-Sent Events."""

__version__ = "0.1.0"

__all__ = ["__version__"]
