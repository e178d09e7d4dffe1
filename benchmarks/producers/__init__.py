"""Rate-paced record sources: a Kafka producer and nchan's HTTP publisher."""
