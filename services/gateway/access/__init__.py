"""Access control of the gateway: API keys, scopes by route family, per-key limits in Redis."""
