"""Rule-reward speed: ``format_reward`` and ``accuracy_reward`` over 100,000 responses (target < 2 s).

Responses mix well-formed correct and wrong answers, malformed outputs, hedges and long reasoning
(a few hundred to a few thousand characters); ground truths are the JSON of EasyR1's answer column.
Usage: ``python benchmarks/bench_rewards.py [--responses N]``; the last line is the time in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rewards import accuracy_reward, format_reward  # noqa: E402

OPTIONS = ["A) Lymphoma", "B) Squamous cell carcinoma", "C) Adenocarcinoma", "D) Hepatitis B."]
SENTENCE = "The image shows atypical glands with nuclear pleomorphism; option {} is unlikely because "


def make_cases(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` (response, ground truth) pairs with a realistic mix of shapes and lengths."""
    rng = random.Random(seed)
    truths = [
        json.dumps({"ground_truth": option, "question": "Q?", "image": "/x.png", "id": i})
        for i, option in enumerate(OPTIONS)
    ]
    shapes = [
        "<think>{t}</think><answer>{a}</answer>",
        "<think>{t}</think>\n<answer>{a}</answer>",
        "<think>{t}</think><answer>{a}</answer> extra prose",
        "{t} <answer>{a}</answer>",
        "<think>{t}</think><answer>{a} or {b}</answer>",
        "<think>{t}</think><answer>{l}</answer>",
    ]
    cases = []
    for _ in range(count):
        truth = rng.randrange(len(OPTIONS))
        answer = OPTIONS[truth if rng.random() < 0.6 else rng.randrange(len(OPTIONS))]
        think = "".join(SENTENCE.format("ABCD"[rng.randrange(4)]) for _ in range(rng.randint(1, 20)))
        response = rng.choice(shapes).format(t=think, a=answer, b=OPTIONS[0], l=answer[0])
        cases.append((response, truths[truth]))
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--limit-s", type=float, default=2.0, help="target time (reported, not enforced)")
    args = parser.parse_args(argv)

    cases = make_cases(args.responses)
    chars = sum(len(response) for response, _ in cases)
    start = time.perf_counter()
    formats = accuracies = 0.0
    for response, truth in cases:
        formats += format_reward(response)
        accuracies += accuracy_reward(response, truth)
    seconds = time.perf_counter() - start
    print(
        f"responses: {args.responses}, mean length {chars / args.responses:.0f} chars, "
        f"format ok {formats / args.responses:.3f}, accurate {accuracies / args.responses:.3f}"
    )
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
        f"{seconds / args.responses * 1e6:.2f} us per response; target < {args.limit_s:g} s: "
        f"{'met' if seconds < args.limit_s else 'MISSED'}"
    )
    print(f"rule rewards: {args.responses} responses in {seconds:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
