"""One controller module per API area; each only speaks HTTP."""
