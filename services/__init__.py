"""BabelStack's processes: the gateway, the model services and the launcher."""
