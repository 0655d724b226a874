"""The `omotenashi` command: a thin layer over the same functions the API uses."""
