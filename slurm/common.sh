# shellcheck shell=bash
# Shared by slurm/*.sbatch (sourced, never run): logging, environment, signal forwarding, multi-node setup.
#
# Settings (environment variables, all optional):
#   SIZE=7b  PROFILE=h20x4  RUNS=runs  VENV=.venv-gpu (falls back to .venv)
#   BUDGET=paper       training budget overlay (recipes/budgets/: paper, fast)
#   SEED               training seed of a replicate run (runs/<size>/<stage>-seedN); unset: the recipe's
#   PATHVLM_RUN_ARGS   extra arguments for every `pathvlm run` (split on spaces), e.g. "--force"
#   PATHVLM_SFT_ARGS / PATHVLM_GRPO_ARGS   the same for SFT / GRPO stages only (sft.sbatch / grpo.sbatch),
#                      e.g. "--set llamafactory.save_steps=200" / "--set easyr1.trainer.save_freq=20"
#   PATHVLM_REPO       the repository (default: the one holding the submitted script)
# Secrets (OPENAI_API_KEY, WANDB_API_KEY) are passed through the environment and never printed.
# Compute nodes run offline: HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE, HF_DATASETS_OFFLINE [1] and WANDB_MODE
# [offline] are set unless the job's environment sets them; WANDB_MODE=online without a W&B key (WANDB_API_KEY
# or a netrc entry) stops the job at its start.

set -euo pipefail

PV_CHILD=""        # pid of the supervised command (runner or srun)
PV_REQUEUE=0       # 1 once USR1 (time limit near) arrived: checkpoint, then requeue this job
PV_TERM=0          # 1 once Slurm sent TERM (scancel, preemption, scontrol requeue, time limit)
PV_T0=$SECONDS

pv_log() { printf '[pathvlm-slurm %s] %s\n' "$(date '+%F %T %Z')" "$*"; }
pv_die() { pv_log "ERROR: $*"; exit 1; }

# The comment block at the top of the calling script, up to its first #SBATCH line, then the resources
# PROFILE asks for (when an environment can read it).
pv_usage() {
    sed -n '2,/^#SBATCH/{/^#SBATCH/d;/^#!/d;s/^# \{0,1\}//;p}' "$0"
    local python
    python=$(pv_python 2>/dev/null) || return 0
    echo
    echo "Resources of this PROFILE (slurm/submit.sh and slurm/pipeline.sh pass them; an sbatch option wins):"
    (cd "$REPO" && "$python" -m tools.train.profile_args --profile "${PROFILE:-h20x4}" --format describe) | sed 's/^/  /'
}

# The Python of the environment the job would use ($VENV, else .venv-gpu, else .venv).
pv_python() {
    local venv
    local -a venvs=("$REPO/.venv-gpu" "$REPO/.venv")
    if [[ -n "${VENV:-}" ]]; then venvs=("$VENV"); fi
    for venv in "${venvs[@]}"; do
        [[ "$venv" = /* ]] || venv="$REPO/$venv"
        if [[ -x "$venv/bin/python" ]]; then echo "$venv/bin/python"; return 0; fi
    done
    return 1
}

pv_on_usr1() {
    PV_REQUEUE=1
    pv_log "USR1: time limit near; asking the runner (pid ${PV_CHILD:-none}) to checkpoint, then requeueing"
    if [[ -n "$PV_CHILD" ]]; then kill -USR1 "$PV_CHILD" 2>/dev/null || true; fi
}

pv_on_term() {
    PV_TERM=1
    pv_log "TERM: job cancelled, preempted or requeued by Slurm; forwarding to the runner (pid ${PV_CHILD:-none})"
    if [[ -n "$PV_CHILD" ]]; then kill -TERM "$PV_CHILD" 2>/dev/null || true; fi
}

# Scripts may define pv_cleanup (e.g. stop Ray); it runs on exit.
pv_on_exit() {
    local rc=$?
    if declare -F pv_cleanup >/dev/null; then pv_cleanup; fi
    pv_log "end: exit ${rc} after $((SECONDS - PV_T0))s (job ${SLURM_JOB_ID:-none})"
}

# Run a command in the background and wait for it; USR1/TERM that reach this shell meanwhile are
# forwarded to it (bash interrupts `wait` to run a trap, so wait again until the command is gone).
pv_supervise() {
    "$@" &
    PV_CHILD=$!
    while kill -0 "$PV_CHILD" 2>/dev/null; do
        wait "$PV_CHILD" || true
    done
    local rc=0
    wait "$PV_CHILD" || rc=$?
    PV_CHILD=""
    return "$rc"
}

# After a USR1-triggered checkpoint: put this job back in the queue; it resumes from the checkpoint.
pv_requeue() {
    pv_log "requeueing job ${SLURM_JOB_ID:?not inside a Slurm job}"
    scontrol requeue "$SLURM_JOB_ID" || pv_die "scontrol requeue ${SLURM_JOB_ID} failed (is JobRequeue allowed?)"
    exit 0
}

# Parse --help, locate and enter the repository, activate the environment, log the job, install traps.
pv_setup() {
    local arg
    for arg in "$@"; do
        if [[ "$arg" == "-h" || "$arg" == "--help" ]]; then pv_usage; exit 0; fi
    done
    SIZE=${SIZE:-7b}
    PROFILE=${PROFILE:-h20x4}
    BUDGET=${BUDGET:-paper}
    RUNS=${RUNS:-runs}
    cd "$REPO" || pv_die "cannot enter the repository ${REPO}"
    export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}
    export HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1} WANDB_MODE=${WANDB_MODE:-offline}
    pv_activate
    export SIZE PROFILE BUDGET RUNS PATHVLM_RUNS="$RUNS"
    trap pv_on_usr1 USR1
    trap pv_on_term TERM
    trap pv_on_exit EXIT
    pv_log "start: job ${SLURM_JOB_ID:-none} (${SLURM_JOB_NAME:-$(basename "$0")}) restart ${SLURM_RESTART_COUNT:-0}" \
        "on ${SLURM_JOB_NODELIST:-$(hostname -s)} gpus ${CUDA_VISIBLE_DEVICES:-none}"
    pv_log "repo ${REPO} commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        "venv ${VIRTUAL_ENV} size ${SIZE} profile ${PROFILE} budget ${BUDGET} seed ${SEED:-recipe} runs ${RUNS}"
    pv_profile_resources
    pv_log "secrets: OPENAI_API_KEY $([[ -n "${OPENAI_API_KEY:-}" ]] && echo set || echo unset)," \
        "WANDB_API_KEY $([[ -n "${WANDB_API_KEY:-}" ]] && echo set || echo unset)"
    pv_log "offline: HF_HUB_OFFLINE=${HF_HUB_OFFLINE} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE}" \
        "HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE} WANDB_MODE=${WANDB_MODE}"
    local wandb
    wandb=$(python -m tools.common.wandb_key 2>&1) || pv_die "${wandb#error: }"
}

pv_activate() {
    local venv=${VENV:-}
    if [[ -z "$venv" ]]; then
        venv=.venv-gpu
        [[ -f "$venv/bin/activate" ]] || venv=.venv
    fi
    [[ -f "$venv/bin/activate" ]] || pv_die "no environment at ${venv} (set VENV, or run make setup / make setup-gpu)"
    # shellcheck disable=SC1091
    source "$venv/bin/activate"
    command -v pathvlm >/dev/null || pv_die "pathvlm is not installed in ${venv} (run make setup)"
}

# `pathvlm run STAGE` with the size, profile, runs root, extra arguments from $PATHVLM_RUN_ARGS (every
# stage) and from the variable named by PV_ENGINE_ARGS (this script's engine only), then "$@".
pv_runner_cmd() {
    local stage=$1
    shift
    local -a common=() engine=()
    read -r -a common <<<"${PATHVLM_RUN_ARGS:-}"
    if [[ -n "${PV_ENGINE_ARGS:-}" ]]; then read -r -a engine <<<"${!PV_ENGINE_ARGS:-}"; fi
    local -a seed=()
    if [[ -n "${SEED:-}" ]]; then seed=(--seed "$SEED"); fi
    PV_CMD=(pathvlm run "$stage" --size "$SIZE" --profile "$PROFILE" --budget "$BUDGET" "${seed[@]}" --runs "$RUNS"
        "${common[@]}" "${engine[@]}" "$@")
}

# Run one supervised step (PV_LAUNCH may prefix the command, e.g. srun for multi-node SFT); after a USR1
# checkpoint request the job requeues itself, and a failure ends the job with a clear error.
pv_step() {
    local name=$1 rc=0
    shift
    if ((PV_REQUEUE)); then pv_requeue; fi  # USR1 arrived between steps
    if ((PV_TERM)); then exit 143; fi
    pv_log "${name}: $*"
    pv_supervise "${PV_LAUNCH[@]}" "$@" || rc=$?
    if ((PV_REQUEUE)); then
        pv_log "${name}: stopped with exit ${rc} after the checkpoint request"
        pv_requeue
    fi
    if ((PV_TERM)); then
        pv_log "${name}: stopped by Slurm with exit ${rc}; a requeued job resumes from the last checkpoint"
        exit 143
    fi
    ((rc == 0)) || pv_die "${name} failed with exit ${rc} (size ${SIZE}, profile ${PROFILE}); see the output above"
    pv_log "${name}: finished"
}

# One stage through the runner; its resolved config is written to RUNS/SIZE/STAGE/config.yaml.
pv_run_stage() {
    local stage=$1
    shift
    local dir="${RUNS}/${SIZE}/${stage}"
    if [[ -n "${SEED:-}" ]]; then dir+="-seed${SEED} (or ${stage} when ${SEED} is the recipe's seed)"; fi
    pv_runner_cmd "$stage" "$@"
    pv_log "stage ${stage}: resolved config ${dir}/config.yaml"
    pv_step "stage ${stage}" "${PV_CMD[@]}"
    pv_log "stage ${stage}: config ${dir}/config.yaml, model ${dir}/model"
}

# The resources PROFILE declares (recipes/profiles/PROFILE.yaml: gpus_per_node, slurm:) into PV_PROFILE_GPUS;
# inside a job, a GPU profile's job without GPUs (plain sbatch, no --gres) stops here with the command to use.
pv_profile_resources() {
    local text
    local -a opts
    text=$(python -m tools.train.profile_args --profile "$PROFILE" --format lines) ||
        pv_die "cannot read the resources of profile ${PROFILE} (recipes/profiles/${PROFILE}.yaml)"
    mapfile -t opts <<<"$text"
    # shellcheck disable=SC2034  # read by grpo.sbatch and judge.sbatch
    PV_PROFILE_GPUS=${opts[0]#--gres=gpu:}
    pv_log "profile ${PROFILE} asks for ${opts[*]}; the job has ${SLURM_GPUS_ON_NODE:-0} GPUs," \
        "${SLURM_CPUS_PER_TASK:-?} CPUs, ${SLURM_MEM_PER_NODE:-?} MB per node"
    if [[ -n "${SLURM_JOB_ID:-}" ]]; then
        python -m tools.train.profile_args --profile "$PROFILE" --check || pv_die "job resources do not fit profile ${PROFILE}"
    fi
}

PV_LAUNCH=()

# Hostnames of the allocation, first one first.
pv_nodes() { scontrol show hostnames "${SLURM_JOB_NODELIST:?not inside a Slurm job}"; }

# GPUs per node of this job (what --gres gave it; 0 without).
pv_gpus_per_node() { echo "${SLURM_GPUS_ON_NODE:-0}"; }

# The address Slurm reaches a node at (its NodeAddr), e.g. for torchrun's MASTER_ADDR or the Ray head.
pv_node_addr() {
    scontrol show node "$1" | tr ' ' '\n' | sed -n 's/^NodeAddr=//p' | head -n 1
}

# A port derived from the job id, so two jobs on one node do not collide.
pv_port() { echo $(($1 + ${SLURM_JOB_ID:-0} % 10000)); }

# pv_wait_judge URL SECONDS KEY_FILE [PID]: wait until URL/models answers to the key in KEY_FILE, else end the
# job with a clear error (also when the server process PID exits first). The key is read by Python from the
# file: it is on no command line.
pv_wait_judge() {
    local url=$1 limit=$2 key=$3 pid=${4:-} waited=0
    local probe='import sys, urllib.request
key = open(sys.argv[2]).read().strip()
request = urllib.request.Request(sys.argv[1] + "/models", headers={"Authorization": "Bearer " + key})
urllib.request.urlopen(request, timeout=5).read()'
    until python -c "$probe" "$url" "$key" 2>/dev/null; do
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            pv_die "judge: the server exited before answering ${url}/models"
        fi
        ((waited < limit)) || pv_die "judge: ${url}/models did not answer within ${limit}s"
        sleep 2
        waited=$((waited + 2))
    done
    pv_log "judge: ${url}/models answers (after ${waited}s)"
}

# pv_local_judge DIR: wait (PATHVLM_JUDGE_WAIT_S, default 1800 s) for the server file slurm/judge.sbatch
# writes in DIR (of job PATHVLM_JUDGE_JOB when set) and for its health; then PATHVLM_LOCAL_JUDGE_KEY holds the
# judge job's key (from DIR/key, exported, never printed) and PV_JUDGE_SET the r1 overrides that point the
# judge there (the OpenAI key is never sent to it, and it costs nothing per token).
pv_local_judge() {
    local dir=$1 limit=${PATHVLM_JUDGE_WAIT_S:-1800} waited=0 url="" model="" job=""
    local file="${dir}/server"
    while true; do
        if [[ -s "$file" ]]; then
            url=$(sed -n 's/^base_url=//p' "$file")
            model=$(sed -n 's/^model=//p' "$file")
            job=$(sed -n 's/^job=//p' "$file")
            if [[ -z "${PATHVLM_JUDGE_JOB:-}" || "$job" == "$PATHVLM_JUDGE_JOB" ]]; then break; fi
        fi
        ((waited < limit)) || pv_die "judge: no server file ${file}${PATHVLM_JUDGE_JOB:+ of job ${PATHVLM_JUDGE_JOB}} within ${limit}s (is slurm/judge.sbatch running?)"
        sleep 2
        waited=$((waited + 2))
    done
    pv_wait_judge "$url" $((limit - waited)) "${dir}/key"
    PATHVLM_LOCAL_JUDGE_KEY=$(<"${dir}/key")
    export PATHVLM_LOCAL_JUDGE_KEY
    local judge=easyr1.worker.reward.reward_function_kwargs.judge
    # shellcheck disable=SC2034  # read by grpo.sbatch
    PV_JUDGE_SET=(--set "${judge}.base_url=${url}" --set "${judge}.model=${model}"
        --set "${judge}.api_key_env=PATHVLM_LOCAL_JUDGE_KEY"
        --set "${judge}.prompt_usd_per_mtok=0" --set "${judge}.completion_usd_per_mtok=0")
    pv_log "judge: r1 uses the served judge ${model} at ${url} (job ${job})"
}
