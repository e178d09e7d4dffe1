"""Schema catalogs (registries and inline schemas) and models (JSON Schema, Avro, Protobuf)
that validate each record and turn it into the JSON a stream sends as `data:`."""
