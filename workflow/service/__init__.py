"""The service layer: the one entry point that the CLI, the HTTP API and the worker call."""
