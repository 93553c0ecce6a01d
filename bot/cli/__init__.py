"""The `tokenbot` command line: `main.app` is the entry point (the `tokenbot` script,
`python -m bot`); one module per command or command group, `output.py` for tables, JSON and CSV."""
