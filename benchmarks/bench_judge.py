"""Judge batch time: 512 judged rollouts against the fake judge server (200 ms latency, concurrency 32).

A figure, not a target (a GRPO step takes over a minute and EasyR1 computes the reward meanwhile): the
last line printed is ``efficiency: <bound / measured>``, bound = ceil(rollouts / concurrency) x latency
(3.2 s). With ``--error-rate`` the SDK's retries (0.5 s backoff, doubling) lengthen the batch. A second pass
with a fresh judge over the same cache directory must be served from the on-disk cache (zero calls).
Usage: ``python benchmarks/bench_judge.py [--error-rate 0.05]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from rewards.easyr1 import process_reward  # noqa: E402
from rewards.judge import get_judge, reset_judges  # noqa: E402


def make_inputs(root: Path, rollouts: int, group: int = 4, salt: str = "") -> list[dict]:
    """``rollouts`` distinct, well-formed EasyR1 reward inputs: ``group`` rollouts per question and image."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    inputs = []
    for prompt in range(math.ceil(rollouts / group)):
        image = root / f"img{prompt}.png"
        Image.new("RGB", (64, 64), (prompt % 256, 80, 160)).save(image)
        answer = {
            "ground_truth": "C) Adenocarcinoma",
            "question": f"Question {prompt}: what does the slide show?",
            "options": ["A) Lymphoma", "B) Melanoma", "C) Adenocarcinoma", "D) Sarcoma"],
            "image": str(image),
            "id": f"q{prompt}",
        }
        for rollout in range(group):
            think = f"The image shows glands{salt} ({prompt}.{rollout}); option A is excluded because ..."
            letter = "C) Adenocarcinoma" if rollout % 2 == 0 else "B) Melanoma"
            response = f"<think>{think}</think><answer>{letter}</answer>"
            inputs.append({"response": response, "response_length": 40, "ground_truth": json.dumps(answer)})
    return inputs[:rollouts]


def start_server(latency_ms: float, error_rate: float, seed: int) -> tuple[subprocess.Popen, str]:
    """The fake judge as its own process (its own interpreter, as in real use); returns it and its URL."""
    command = [sys.executable, "-m", "tools.cli", "judge-server", "--port", "0"]
    command += ["--latency-ms", str(latency_ms), "--error-rate", str(error_rate), "--seed", str(seed)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    line = server.stdout.readline()
    if "listening on" not in line:
        server.kill()
        raise SystemExit(f"bench_judge: the judge server did not start: {line!r}")
    return server, line.split("listening on ", 1)[1].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction of HTTP 500 replies")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    server, url = start_server(args.latency_ms, args.error_rate, args.seed)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-judge-") as tmp:
            inputs = make_inputs(Path(tmp), args.rollouts)
            os.environ.setdefault("PATHVLM_BENCH_JUDGE_KEY", "bench-key")  # the fake judge ignores it
            judge = {
                "base_url": url,
                "api_key_env": "PATHVLM_BENCH_JUDGE_KEY",
                "model": "fake-judge",
                "concurrency": args.concurrency,
                "max_retries": 4,
                "timeout_s": 10.0,
                "batch_deadline_s": 120.0,
                "cache_dir": str(Path(tmp) / "cache"),
            }
            # Warm-up (imports, client, a connection per slot, as after a training run's first step) on
            # rollouts outside the measured batch.
            warm = make_inputs(Path(tmp) / "warm", args.concurrency, group=1, salt="warm-up")
            process_reward(warm, judge=judge)
            start = time.perf_counter()
            scores = process_reward(inputs, judge=judge)
            measured = time.perf_counter() - start
            first = get_judge(judge).last
            failed = sum(score["judge_failed"] for score in scores)
            reset_judges()  # the second pass is a fresh judge reading the cache from disk, like a resumed run
            again = process_reward(inputs, judge=judge)
            second = get_judge(judge).last
    finally:
        server.kill()
        server.wait()

    bound = math.ceil(args.rollouts / args.concurrency) * args.latency_ms / 1000
    print(
        f"rollouts: {args.rollouts}, concurrency: {args.concurrency}, latency: {args.latency_ms:g} ms, "
        f"error rate: {args.error_rate:g}"
    )
    print(
        f"first pass: {measured:.3f} s, {first.calls} calls, {first.retries} retries, {int(failed)} failed "
        f"{dict(first.failures)}, {first.prompt_tokens}+{first.completion_tokens} tokens"
    )
    print(
        f"second pass (cache): {second.calls} calls, {second.cache_hits} cache hits, "
        f"same scores: {again == scores}"
    )
    print(f"machine: load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"bound: {bound:.3f} s, measured: {measured:.3f} s")
    print(f"efficiency: {bound / measured:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
