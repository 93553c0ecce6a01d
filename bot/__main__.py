"""`python -m bot` runs the same CLI as the `tokenbot` console script."""

from bot.cli.main import app

app(prog_name="tokenbot")
