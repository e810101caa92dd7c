"""Command-line tools of pathvlm-r1 (entry point: ``pathvlm``, see tools/cli.py)."""
