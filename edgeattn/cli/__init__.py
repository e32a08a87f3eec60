"""The Typer CLI: thin command modules that parse flags, call the library and render with rich."""
