"""Redis Streams RPC: a typed client, a worker loop, key names and queue statistics."""
