#!/bin/bash
# Usage: slurm/pipeline.sh [--controls] [--local-judge] [-- SBATCH_OPTION...]
#
# Submit the whole paper pipeline as chained Slurm jobs and print "<stage> <job id>" per job:
#   alpha (sft.sbatch) -> beta (grpo.sbatch) -> r1 (grpo.sbatch) -> eval (eval.sbatch, all models)
# With --controls also gamma (SFT from alpha), delta (SFT from the base model) and epsilon (GRPO from the
# base model); eval then waits for them too. Each job starts only after its parents COMPLETED
# (--dependency=afterok); when a parent fails, its dependants are cancelled and never start.
# With --local-judge, r1's judge is an open VLM served on the cluster: judge (judge.sbatch) starts after beta
# beside r1, which waits for the server's /v1/models health (PATHVLM_JUDGE_WAIT_S, default 1800 s; else it
# fails with a clear error) and grades with it; judge-stop cancels the judge job once r1 has ended.
# PATHVLM_JUDGE_SBATCH_ARGS (split on spaces) go to the judge job only, e.g. "--gres=gpu:2 --nodelist=n7".
# SBATCH_OPTIONs after "--" go to every sbatch call (e.g. --partition=gpu --account=lab --time=1-00:00:00).
# The training and judge jobs get PROFILE's GPUs, CPUs and memory first (`pathvlm profile-args`, as
# slurm/submit.sh), so SBATCH_OPTIONs such as --gres=gpu:2 still win.
#
# SEEDS="42 43 44" submits one such chain per training seed (replicates in runs/<size>/<stage>-seedN); eval waits
# for all of them. Environment: SIZE, PROFILE, BUDGET, RUNS, VENV, PATHVLM_RUN_ARGS, ... reach the jobs unchanged (see the
# --help of slurm/sft.sbatch, grpo.sbatch and eval.sbatch). Logs: logs/pathvlm-<size>-<stage>-<job id>.out.
# Example:
#   SIZE=3b slurm/pipeline.sh --controls -- --partition=h20
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

CONTROLS=0
LOCAL_JUDGE=0
SBATCH_ARGS=()
while (($#)); do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --controls) CONTROLS=1 ;;
        --local-judge) LOCAL_JUDGE=1 ;;
        --) shift; SBATCH_ARGS=("$@"); break ;;
        *) echo "pipeline.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
mkdir -p logs
SIZE=${SIZE:-7b}
# shellcheck source=slurm/common.sh
source slurm/common.sh
PYTHON=$(pv_python) || { echo "pipeline.sh: no environment with Python (set VENV, or run make setup)" >&2; exit 1; }
mapfile -t PROFILE_OPTS < <("$PYTHON" -m tools.train.profile_args --profile "${PROFILE:-h20x4}" --format lines)
((${#PROFILE_OPTS[@]})) || { echo "pipeline.sh: cannot read profile ${PROFILE:-h20x4}" >&2; exit 1; }

# submit NAME SCRIPT PARENT_IDS [SCRIPT_ARG...]: submit, record JOB[NAME], print "NAME ID" at once
# (so a failed submission still shows what is already queued). PARENT_IDS: "" or "id[:id...]".
# JOB_OPTS: further sbatch options for this one job.
declare -A JOB
JOB_OPTS=()
submit() {
    local name=$1 script=$2 parents=$3
    shift 3
    local -a opts=(--parsable --job-name="pathvlm-${SIZE}-${name}" --kill-on-invalid-dep=yes)
    if [[ "$script" != eval.sbatch ]]; then opts+=("${PROFILE_OPTS[@]}"); fi  # eval: one GPU (eval.sbatch)
    if [[ -n "$parents" ]]; then opts+=(--dependency="afterok:${parents}"); fi
    JOB[$name]=$(sbatch "${opts[@]}" "${SBATCH_ARGS[@]}" "${JOB_OPTS[@]}" "slurm/${script}" "$@" | cut -d';' -f1)
    JOB_OPTS=()
    echo "${name} ${JOB[$name]}"
}

# chain SUFFIX: the stage jobs of one seed (SEED in the environment; SUFFIX names its jobs).
EVAL_PARENTS=""
chain() {
    local s=$1
    submit "alpha$s" sft.sbatch "" alpha
    submit "beta$s" grpo.sbatch "${JOB[alpha$s]}" beta
    if ((LOCAL_JUDGE)); then
        local judge_dir="${RUNS:-runs}/${SIZE}/judge$s"
        read -r -a JOB_OPTS <<<"${PATHVLM_JUDGE_SBATCH_ARGS:-}"
        JOB_OPTS+=(--export="ALL,PATHVLM_JUDGE_DIR=${judge_dir}")
        submit "judge$s" judge.sbatch "${JOB[beta$s]}"
        JOB_OPTS=(--export="ALL,PATHVLM_JUDGE_DIR=${judge_dir},PATHVLM_JUDGE_JOB=${JOB[judge$s]}")
    fi
    submit "r1$s" grpo.sbatch "${JOB[beta$s]}" r1
    if ((LOCAL_JUDGE)); then
        # afterany: the judge job stops once r1 has ended, whether r1 finished, failed or was cancelled.
        JOB[judge-stop$s]=$(sbatch --parsable --job-name="pathvlm-${SIZE}-judge-stop$s" \
            --dependency="afterany:${JOB[r1$s]}" "${SBATCH_ARGS[@]}" --gres=gpu:0 --cpus-per-task=1 --mem=100M \
            --time=10 --wrap="scancel ${JOB[judge$s]}" | cut -d';' -f1)
        echo "judge-stop$s ${JOB[judge-stop$s]}"
    fi
    EVAL_PARENTS+="${EVAL_PARENTS:+:}${JOB[r1$s]}"
    if ((CONTROLS)); then
        submit "gamma$s" sft.sbatch "${JOB[alpha$s]}" gamma
        submit "delta$s" sft.sbatch "" delta
        submit "epsilon$s" grpo.sbatch "" epsilon
        EVAL_PARENTS+=":${JOB[gamma$s]}:${JOB[delta$s]}:${JOB[epsilon$s]}"
    fi
}
if [[ -n "${SEEDS:-}" ]]; then
    for seed in $SEEDS; do SEED=$seed chain "-seed${seed}"; done
else
    chain ""
fi
submit eval eval.sbatch "$EVAL_PARENTS"
