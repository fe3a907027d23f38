"""One module per command of ``python -m pipeline``, each adding its own parser and flags (``add_parser``)."""
