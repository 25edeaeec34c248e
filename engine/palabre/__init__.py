"""Palabre: a plugin-based chatbot engine driven by YAML flows."""

__version__ = "0.1.0"
