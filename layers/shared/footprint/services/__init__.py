"""Use cases: they wire models and the engine to ports (Protocols); adapters implement the ports."""
