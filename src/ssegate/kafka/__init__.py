"""The Kafka side of ssegate: reading topics and encoding readers' progress as SSE ids."""
