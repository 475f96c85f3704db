"""Built-in plugins. Each implements hooks exactly as a third-party plugin would."""
