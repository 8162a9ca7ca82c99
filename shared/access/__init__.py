"""API keys: their records in Redis, their tokens and scopes (shared by the gateway and the CLI)."""
