"""Shared helpers of every path: the one prompt builder, the flat Qwen config, W&B naming."""
