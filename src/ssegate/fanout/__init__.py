"""Kafka records to client streams: subscription groups, shared encoding, delivery."""
