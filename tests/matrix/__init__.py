"""A real Matrix homeserver (Synapse) and real Matrix clients for the tests and the benchmark."""
