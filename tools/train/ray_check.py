"""Check a multi-node Ray cluster before the engine starts: ``python -m tools.train.ray_check --nodes N``.

``slurm/grpo.sbatch`` runs it after starting Ray on every node of the job: it waits until ``--nodes`` nodes
are alive, checks that each offers the job's ``--gpus`` and ``--cpus``, then runs one Ray task pinned to each
node (standing in for EasyR1's workers) and prints the host each ran on. Exit 1 with the reason otherwise.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time


def _host() -> str:
    return socket.gethostname()


def check(nodes: int, gpus: int, cpus: int, wait_s: float) -> list[str]:
    """Problems of the Ray cluster at ``RAY_ADDRESS``; prints one line per node when there are none."""
    import ray  # deferred: a heavy import that --help does not need
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
    deadline = time.monotonic() + wait_s
    while len(alive := [n for n in ray.nodes() if n["Alive"]]) < nodes and time.monotonic() < deadline:
        time.sleep(1)
    if len(alive) != nodes:
        return [f"{len(alive)} of {nodes} nodes joined Ray within {wait_s:.0f}s"]
    problems = []
    for node in alive:
        have = node["Resources"]
        for name, want in (("GPU", gpus), ("CPU", cpus)):
            if have.get(name, 0) != want:
                problems.append(
                    f"node {node['NodeManagerAddress']} offers {have.get(name, 0)} {name}, want {want}"
                )
    if problems:
        return problems
    task = ray.remote(num_cpus=0)(_host)
    pinned = [NodeAffinitySchedulingStrategy(node["NodeID"], soft=False) for node in alive]
    hosts = ray.get([task.options(scheduling_strategy=s).remote() for s in pinned], timeout=wait_s)
    for node, host in zip(alive, hosts, strict=True):
        print(
            f"ray node {node['NodeID'][:8]} at {node['NodeManagerAddress']}: {gpus} GPU, {cpus} CPU, "
            f"task ran on {host}"
        )
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.train.ray_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--nodes", type=int, required=True, help="nodes that must be alive")
    parser.add_argument("--gpus", type=int, required=True, help="GPUs each node must offer")
    parser.add_argument("--cpus", type=int, required=True, help="CPUs each node must offer")
    parser.add_argument("--wait", type=float, default=300, help="seconds to wait for the nodes (default 300)")
    args = parser.parse_args(argv)
    problems = check(args.nodes, args.gpus, args.cpus, args.wait)
    for problem in problems:
        print(f"error: Ray: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
