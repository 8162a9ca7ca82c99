"""Common code of every BabelStack process: typed messages, the Redis RPC layer,
settings, errors and logging. Imports no model library."""
