# shellcheck shell=bash
# Shared by slurm/* (sourced, never run; callers set REPO first): defaults, logging, environment, profile
# resources, signal forwarding, stage runs, node addresses, the served judge's handshake, submission.
# The settings it reads (SIZE, PROFILE, BUDGET, RUNS, VENV, SEED, PATHVLM_RUN_ARGS, the offline variables,
# WANDB_MODE) are described in slurm/README.md; secrets come from the environment and are never printed.

set -euo pipefail

SIZE=${SIZE:-7b}
PROFILE=${PROFILE:-h20x4}
BUDGET=${BUDGET:-paper}
RUNS=${RUNS:-runs}

PV_CHILD=""   # pid of the supervised command (runner, srun or server)
PV_REQUEUE=0  # 1 once USR1 (time limit near) arrived: checkpoint, then requeue this job
PV_TERM=0     # 1 once Slurm sent TERM (scancel, preemption, scontrol requeue, time limit)
PV_LAUNCH=()  # prefix of every pv_step command (sft.sbatch: srun on every node)
PV_T0=$SECONDS

pv_log() { printf '[pathvlm-slurm %s] %s\n' "$(date '+%F %T %Z')" "$*"; }
pv_die() { pv_log "ERROR: $*"; exit 1; }

# The comment block at the top of the calling script, up to its first line of code or #SBATCH line.
pv_header() { awk 'NR > 1 && (!/^#/ || /^#SBATCH/) { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }

# --help of a job script: its header, then the resources PROFILE asks for (when an environment can read it).
pv_usage() {
    pv_header
    local text
    text=$(pv_profile --format describe 2>/dev/null) || return 0
    echo
    echo "Resources of this PROFILE (slurm/submit.sh and slurm/pipeline.sh pass them; an sbatch option wins):"
    echo "  ${text}"
}

# ---------------------------------------------------------------- environment and profile

# The environment a job uses: $VENV, else .venv-gpu, else .venv (relative paths: in the repository).
pv_venv() {
    local venv
    local -a venvs=(.venv-gpu .venv)
    if [[ -n "${VENV:-}" ]]; then venvs=("$VENV"); fi
    for venv in "${venvs[@]}"; do
        [[ "$venv" = /* ]] || venv="$REPO/$venv"
        if [[ -f "$venv/bin/activate" ]]; then echo "$venv"; return 0; fi
    done
    return 1
}

pv_activate() {
    local venv
    venv=$(pv_venv) || pv_die "no environment at ${VENV:-.venv} (set VENV, or run make setup / make setup-gpu)"
    # shellcheck disable=SC1091
    source "$venv/bin/activate"
    command -v pathvlm >/dev/null || pv_die "pathvlm is not installed in ${venv} (run make setup)"
}

# tools.train.profile_args for PROFILE (recipes/profiles/PROFILE.yaml) with the given arguments.
pv_profile() {
    local venv
    venv=$(pv_venv) || return 1
    (cd "$REPO" && "$venv/bin/python" -m tools.train.profile_args --profile "$PROFILE" "$@")
}

# PROFILE's resources as sbatch options into PV_PROFILE_OPTS: --gres=gpu:N --cpus-per-task=C --mem=M.
pv_profile_opts() {
    local text
    text=$(pv_profile --format lines) || return 1
    [[ -n "$text" ]] || return 1
    mapfile -t PV_PROFILE_OPTS <<<"$text"
}

# In a job: log what PROFILE asks for and what the job got, PV_PROFILE_GPUS = the profile's GPUs per node; a GPU
# profile's job without GPUs (plain sbatch, no --gres) stops here with the command to use.
pv_profile_resources() {
    pv_profile_opts || pv_die "cannot read the resources of profile ${PROFILE} (recipes/profiles/${PROFILE}.yaml)"
    # shellcheck disable=SC2034  # read by grpo.sbatch and judge.sbatch
    PV_PROFILE_GPUS=${PV_PROFILE_OPTS[0]#--gres=gpu:}
    pv_log "profile ${PROFILE} asks for ${PV_PROFILE_OPTS[*]}; the job has ${SLURM_GPUS_ON_NODE:-0} GPUs," \
        "${SLURM_CPUS_PER_TASK:-?} CPUs, ${SLURM_MEM_PER_NODE:-?} MB per node"
    if [[ -n "${SLURM_JOB_ID:-}" ]]; then
        pv_profile --check || pv_die "job resources do not fit profile ${PROFILE}"
    fi
}

# slurm/submit.sh and slurm/pipeline.sh: enter the repository (sbatch runs there, so its logs/ gets the logs)
# and read PROFILE's resources into PV_PROFILE_OPTS; a problem ends the caller with one line on stderr.
pv_submit_setup() {
    local me
    me=$(basename "$0")
    cd "$REPO"
    mkdir -p logs
    pv_venv >/dev/null || { echo "${me}: no environment with Python (set VENV, or run make setup)" >&2; exit 1; }
    pv_profile_opts || { echo "${me}: cannot read profile ${PROFILE}" >&2; exit 1; }
}

# ---------------------------------------------------------------- the job: setup, signals, steps

# Parse --help, enter the repository, set the offline defaults, activate the environment, log the job, install
# the traps, check the profile's resources and the W&B key.
pv_setup() {
    local arg wandb
    for arg in "$@"; do
        if [[ "$arg" == "-h" || "$arg" == "--help" ]]; then pv_usage; exit 0; fi
    done
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
    wandb=$(python -m tools.common.wandb_key 2>&1) || pv_die "${wandb#error: }"
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

# On exit: the script's pv_cleanup (if it defines one), then a child still running is stopped.
pv_on_exit() {
    local rc=$?
    if declare -F pv_cleanup >/dev/null; then pv_cleanup; fi
    if [[ -n "$PV_CHILD" ]]; then kill -TERM "$PV_CHILD" 2>/dev/null || true; fi
    pv_log "end: exit ${rc} after $((SECONDS - PV_T0))s (job ${SLURM_JOB_ID:-none})"
}

# After a USR1-triggered checkpoint: put this job back in the queue; it resumes from the checkpoint.
pv_requeue() {
    pv_log "requeueing job ${SLURM_JOB_ID:?not inside a Slurm job}"
    scontrol requeue "$SLURM_JOB_ID" || pv_die "scontrol requeue ${SLURM_JOB_ID} failed (is JobRequeue allowed?)"
    exit 0
}

# Start a command in the background as the job's child: USR1 and TERM that reach this shell go to it.
pv_start() {
    "$@" &
    PV_CHILD=$!
}

# pv_wait NAME: wait for the child (bash interrupts `wait` to run a trap: wait again until it is gone). After
# a USR1 checkpoint request the job requeues itself, after TERM it stops; else the child's status is returned.
pv_wait() {
    local name=$1 rc=0
    while kill -0 "$PV_CHILD" 2>/dev/null; do wait "$PV_CHILD" || true; done
    wait "$PV_CHILD" || rc=$?
    PV_CHILD=""
    if ((PV_REQUEUE)); then
        pv_log "${name}: stopped with exit ${rc} after the checkpoint request"
        pv_requeue
    fi
    if ((PV_TERM)); then
        pv_log "${name}: stopped by Slurm with exit ${rc}; a requeued job resumes from the last checkpoint"
        exit 143
    fi
    return "$rc"
}

# pv_step NAME COMMAND...: one supervised step (prefixed by PV_LAUNCH); a failure ends the job with a clear error.
pv_step() {
    local name=$1 rc=0
    shift
    if ((PV_REQUEUE)); then pv_requeue; fi  # USR1 arrived between steps
    if ((PV_TERM)); then exit 143; fi
    pv_log "${name}: $*"
    pv_start "${PV_LAUNCH[@]}" "$@"
    pv_wait "$name" || rc=$?
    ((rc == 0)) || pv_die "${name} failed with exit ${rc} (size ${SIZE}, profile ${PROFILE}); see the output above"
    pv_log "${name}: finished"
}

# pv_run_stage STAGE [ARG...]: `pathvlm run STAGE` with the job's size, profile, budget, seed and runs root,
# PATHVLM_RUN_ARGS, then ARGs; its resolved config is written to RUNS/SIZE/STAGE/config.yaml.
pv_run_stage() {
    local stage=$1 dir="${RUNS}/${SIZE}/$1"
    shift
    local -a seed=() extra=()
    read -r -a extra <<<"${PATHVLM_RUN_ARGS:-}"
    if [[ -n "${SEED:-}" ]]; then
        seed=(--seed "$SEED")
        dir+="-seed${SEED} (or ${stage} when ${SEED} is the recipe's seed)"
    fi
    pv_log "stage ${stage}: resolved config ${dir}/config.yaml"
    pv_step "stage ${stage}" pathvlm run "$stage" --size "$SIZE" --profile "$PROFILE" --budget "$BUDGET" \
        "${seed[@]}" --runs "$RUNS" "${extra[@]}" "$@"
    pv_log "stage ${stage}: config ${dir}/config.yaml, model ${dir}/model"
}

# ---------------------------------------------------------------- nodes

# The address Slurm reaches a node at (its NodeAddr), e.g. for torchrun's MASTER_ADDR or the Ray head.
pv_node_addr() { scontrol show node "$1" | tr ' ' '\n' | sed -n 's/^NodeAddr=//p' | head -n 1; }

# pv_head VAR: PV_NODES = the job's hostnames, first one first; PV_HEAD_ADDR = VAR's value when set, else the
# first node's address.
pv_head() {
    mapfile -t PV_NODES < <(scontrol show hostnames "${SLURM_JOB_NODELIST:?not inside a Slurm job}")
    PV_HEAD_ADDR=${!1:-$(pv_node_addr "${PV_NODES[0]}")}
    [[ -n "$PV_HEAD_ADDR" ]] || pv_die "cannot find the address of ${PV_NODES[0]}; set $1"
}

# One process per GPU: the job's GPUs per node (what --gres gave it), 1 without GPUs (cpu profile).
pv_procs_per_node() { echo $((${SLURM_GPUS_ON_NODE:-0} > 0 ? SLURM_GPUS_ON_NODE : 1)); }

# A port derived from the job id, so two jobs on one node do not collide.
pv_port() { echo $(($1 + ${SLURM_JOB_ID:-0} % 10000)); }

# ---------------------------------------------------------------- the served judge (judge.sbatch -> r1)

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

# pv_publish_judge DIR URL MODEL: the server file pv_local_judge waits for, written whole.
pv_publish_judge() {
    printf 'base_url=%s\nmodel=%s\njob=%s\n' "$2" "$3" "${SLURM_JOB_ID:-none}" >"$1/server.tmp"
    mv "$1/server.tmp" "$1/server"
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
