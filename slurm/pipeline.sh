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
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=slurm/common.sh
source "$REPO/slurm/common.sh"

CONTROLS=0
LOCAL_JUDGE=0
SBATCH_ARGS=()
while (($#)); do
    case "$1" in
        -h | --help) pv_header; exit 0 ;;
        --controls) CONTROLS=1 ;;
        --local-judge) LOCAL_JUDGE=1 ;;
        --) shift; SBATCH_ARGS=("$@"); break ;;
        *) echo "pipeline.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
pv_submit_setup
TRAIN=("${PV_PROFILE_OPTS[@]}" "${SBATCH_ARGS[@]}")  # the profile's resources, then yours (eval: its own gpu:1)

# submit NAME PARENT_IDS SBATCH_OPTION... SCRIPT [SCRIPT_ARG...]: submit, record JOB[NAME], print "NAME ID" at
# once (so a failed submission still shows what is already queued). PARENT_IDS: "" or "id[:id...]" (afterok).
declare -A JOB
submit() {
    local name=$1 parents=$2
    shift 2
    local -a opts=(--parsable --job-name="pathvlm-${SIZE}-${name}" --kill-on-invalid-dep=yes)
    if [[ -n "$parents" ]]; then opts+=(--dependency="afterok:${parents}"); fi
    JOB[$name]=$(sbatch "${opts[@]}" "$@" | cut -d';' -f1)
    echo "${name} ${JOB[$name]}"
}

# chain SUFFIX: the stage jobs of one seed (SEED in the environment; SUFFIX names its jobs).
EVAL_PARENTS=""
chain() {
    local s=$1
    local -a r1_opts=()
    submit "alpha$s" "" "${TRAIN[@]}" slurm/sft.sbatch alpha
    submit "beta$s" "${JOB[alpha$s]}" "${TRAIN[@]}" slurm/grpo.sbatch beta
    if ((LOCAL_JUDGE)); then
        local judge_dir="${RUNS}/${SIZE}/judge$s"
        local -a judge_opts
        read -r -a judge_opts <<<"${PATHVLM_JUDGE_SBATCH_ARGS:-}"
        submit "judge$s" "${JOB[beta$s]}" "${TRAIN[@]}" "${judge_opts[@]}" \
            --export="ALL,PATHVLM_JUDGE_DIR=${judge_dir}" slurm/judge.sbatch
        r1_opts=(--export="ALL,PATHVLM_JUDGE_DIR=${judge_dir},PATHVLM_JUDGE_JOB=${JOB[judge$s]}")
    fi
    submit "r1$s" "${JOB[beta$s]}" "${TRAIN[@]}" "${r1_opts[@]}" slurm/grpo.sbatch r1
    if ((LOCAL_JUDGE)); then  # afterany: the judge job stops once r1 has ended, however it ended
        submit "judge-stop$s" "" --dependency="afterany:${JOB[r1$s]}" "${SBATCH_ARGS[@]}" --gres=gpu:0 \
            --cpus-per-task=1 --mem=100M --time=10 --wrap="scancel ${JOB[judge$s]}"
    fi
    EVAL_PARENTS+="${EVAL_PARENTS:+:}${JOB[r1$s]}"
    if ((CONTROLS)); then
        submit "gamma$s" "${JOB[alpha$s]}" "${TRAIN[@]}" slurm/sft.sbatch gamma
        submit "delta$s" "" "${TRAIN[@]}" slurm/sft.sbatch delta
        submit "epsilon$s" "" "${TRAIN[@]}" slurm/grpo.sbatch epsilon
        EVAL_PARENTS+=":${JOB[gamma$s]}:${JOB[delta$s]}:${JOB[epsilon$s]}"
    fi
}
if [[ -n "${SEEDS:-}" ]]; then
    for seed in $SEEDS; do SEED=$seed chain "-seed${seed}"; done
else
    chain ""
fi
submit eval "$EVAL_PARENTS" "${SBATCH_ARGS[@]}" slurm/eval.sbatch
