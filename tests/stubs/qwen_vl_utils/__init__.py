"""qwen-vl-utils (gpu environment only): EasyR1's dataset imports it for videos (tests/stubs/README.md)."""
