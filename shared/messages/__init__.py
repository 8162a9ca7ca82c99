"""Typed messages between processes: the envelope, and one module per service's payloads."""
