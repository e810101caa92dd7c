#!/bin/bash
# Usage: slurm/submit.sh [SBATCH_OPTION...] SCRIPT [SCRIPT_ARG...]
#
# sbatch SCRIPT with the GPUs per node, CPUs and memory of PROFILE (recipes/profiles/PROFILE.yaml:
# gpus_per_node and its slurm: block, printed by `pathvlm profile-args`), e.g.
#   --gres=gpu:8 --cpus-per-task=64 --mem=512G for PROFILE=a100x8. The SBATCH_OPTIONs you give come after
# them, so they win (sbatch keeps the last of a repeated option). Prints sbatch's output (the job id).
# sbatch runs in the repository, wherever you call this from: the job's log lands in the repository's logs/
# (the scripts' --output=logs/%x-%j.out; created when missing), and relative paths in SBATCH_OPTIONs are read there.
# Environment: PROFILE [h20x4], VENV [.venv-gpu, else .venv: the Python that reads the profile]; SIZE,
# BUDGET, RUNS, ... reach the job unchanged (see SCRIPT --help).
# Examples:
#   slurm/submit.sh slurm/sft.sbatch
#   PROFILE=a100x8 slurm/submit.sh --nodes=2 --partition=gpu slurm/grpo.sbatch beta
#   PROFILE=lean slurm/submit.sh --gres=gpu:1 slurm/sft.sbatch   # one GPU instead of the profile's two
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=slurm/common.sh
source "$REPO/slurm/common.sh"

OPTS=()
while (($#)) && [[ "$1" == -* ]]; do
    if [[ "$1" == -h || "$1" == --help ]]; then pv_header; exit 0; fi
    OPTS+=("$1")
    shift
done
(($#)) || { echo "submit.sh: no SCRIPT (see --help)" >&2; exit 2; }
[[ -f "$1" ]] || { echo "submit.sh: no script $1" >&2; exit 2; }
SCRIPT=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
pv_submit_setup
exec sbatch "${PV_PROFILE_OPTS[@]}" "${OPTS[@]}" "$SCRIPT" "$@"
