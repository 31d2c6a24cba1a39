"""The routing policy file: its schema (pydantic), loading with ${ENV} and FILE:LINE errors, and the
settings of metering, quality and replicas.

The lowest floor with the wires: it imports nothing else of the gateway."""
