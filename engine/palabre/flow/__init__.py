"""Flows: the model, the YAML loader that keeps line and column, checks and the JSON Schema."""
