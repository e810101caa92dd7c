"""The evaluation path: backends, evaluate, statistics, report, W&B, judge grading."""
