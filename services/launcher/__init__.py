"""The embedded launcher: ``babelstack up`` runs Redis, the services and the gateway."""
