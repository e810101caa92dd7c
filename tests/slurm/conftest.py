"""A real one-node SLURM cluster for the tests in this folder.

The session fixture ``slurm`` installs ``slurm-wlm`` and ``munge`` with apt-get when they are missing
(CI runs as root), writes a ``slurm.conf`` for this machine (``Gres=gpu:4`` backed by dummy device files,
no cgroups, all state in a temporary folder, free ports), starts munged, slurmctld and slurmd as
background processes it owns, and at the end cancels the cluster's jobs and stops exactly those processes.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

APT_PACKAGES = ("slurm-wlm", "munge")
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue", "scancel", "sinfo")
FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)


def _ensure_installed() -> None:
    """apt-get install slurm-wlm and munge unless their programs are already on PATH."""
    if all(shutil.which(name) for name in PROGRAMS):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail(f"SLURM tests need {' '.join(APT_PACKAGES)}: run as root on a Debian/Ubuntu machine")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        _run(["apt-get", "update", "-qq"], env=env, timeout=900)
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES]
        _run(install, env=env, timeout=1800)
    except subprocess.CalledProcessError as err:
        pytest.fail(f"{' '.join(err.cmd[:2])} failed ({err.returncode}):\n{err.stdout}\n{err.stderr}")
    missing = [name for name in PROGRAMS if not shutil.which(name)]
    if missing:
        pytest.fail(f"after installing {' '.join(APT_PACKAGES)} these programs are still missing: {missing}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _real_memory_mb() -> int:
    """This machine's memory in MB, less a little headroom for the daemons."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return max(total - 256, 512)


def _write_config(root: Path, host: str, nodes: list[str], gpus: int = 4) -> Path:
    """slurm.conf for ``nodes`` (one: this host; several: ``node1``... each with its own slurmd ``Port=``,
    spool, pid and log through ``%n``), all on 127.0.0.1, each with ``gpus`` dummy GPUs."""
    for sub in ("state", "spool", "log", "dev"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    gres = []
    for node in nodes:  # slurmd accepts only character devices: stand-ins for /dev/nvidia*
        (root / "dev" / node).mkdir()
        for i in range(gpus):
            (root / "dev" / node / f"nvidia{i}").symlink_to("/dev/null")
        gres.append(f"NodeName={node} Name=gpu File={root}/dev/{node}/nvidia[0-{gpus - 1}]")
    (root / "gres.conf").write_text("AutoDetect=off\n" + "\n".join(gres) + "\n")
    many = len(nodes) > 1
    node_lines = "\n".join(
        f"NodeName={node} NodeAddr=127.0.0.1{f' Port={_free_port()}' if many else ''} CPUs=2 "
        f"RealMemory={_real_memory_mb()} Gres=gpu:{gpus} State=UNKNOWN"
        for node in nodes
    )
    slurmd = "slurmd-%n" if many else "slurmd"
    conf = root / "slurm.conf"
    conf.write_text(
        f"""# {len(nodes)}-node test cluster written by tests/slurm/conftest.py
ClusterName=pathvlm-test{len(nodes)}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.socket,cred_expire=5
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool{"/%n" if many else ""}
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/{slurmd}.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/{slurmd}.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
PreemptMode=OFF
JobRequeue=1
MinJobAge=900
KillWait=15
InactiveLimit=0
ReturnToService=2
MpiDefault=none
{node_lines}
PartitionName=test Nodes={",".join(nodes)} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""
    )
    return conf


@dataclass
class SlurmCluster:
    """A running test cluster; the helpers talk to it through ``env`` (SLURM_CONF points at its config)."""

    root: Path
    conf: Path
    node: str
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def cmd(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, check: bool = True):
        return subprocess.run(
            list(args), env={**self.env, **(env or {})}, cwd=cwd, text=True, capture_output=True, check=check
        )

    def sbatch(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
        """Submit with ``sbatch --parsable``; returns the job id."""
        result = self.cmd("sbatch", "--parsable", *args, env=env, cwd=cwd, check=False)
        assert result.returncode == 0, f"sbatch {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (JobState, Dependency, Reason, StartTime, Restarts, ...)."""
        out = self.cmd("scontrol", "-o", "show", "job", job_id).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout:.0f}s for {what} in vain\n{self.diagnostics()}")
            time.sleep(1)

    def wait_finished(self, job_id: str, timeout: float = 600) -> dict[str, str]:
        """Wait until the job leaves the queue for good; returns its final record."""
        self.wait_for(lambda: self.job(job_id)["JobState"] in FINISHED, timeout, f"job {job_id} to finish")
        return self.job(job_id)

    def diagnostics(self) -> str:
        queue = self.cmd("squeue", "-a", "-o", "%i %j %T %r", check=False).stdout
        logs = ""
        for log in sorted((self.root / "log").glob("slurm*.log")):
            logs += f"\n{log.name} (tail):\n" + "\n".join(log.read_text().splitlines()[-20:])
        return f"squeue:\n{queue}{logs}"

    def stop(self) -> None:
        """Cancel the cluster's jobs, wait for them to end, then stop the daemons this harness started."""
        if self.procs and self.procs[-1].poll() is None:
            self.cmd("scancel", "--full", "--partition=test", check=False)
            deadline = time.monotonic() + 60
            while self.cmd("squeue", "-h", "-t", "R,CG,CF", check=False).stdout.strip():
                if time.monotonic() > deadline:
                    break
                time.sleep(1)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _start(cluster: SlurmCluster, name: str, args: list[str]) -> None:
    log = open(cluster.root / "log" / f"{name}.stderr", "w")  # noqa: SIM115 - lives as long as the daemon
    cluster.procs.append(
        subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=cluster.env, start_new_session=True)
    )


def uts_namespaces_refused() -> str | None:
    """Why this machine cannot run a slurmd in its own UTS namespace (``unshare --uts``), or None."""
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    result = subprocess.run(["unshare", "--uts", "true"], capture_output=True, text=True)
    if result.returncode:
        return f"unshare --uts is refused here: {result.stderr.strip() or result.returncode}"
    return None


def start_cluster(root: Path, nodes: int = 1, gpus: int = 4) -> SlurmCluster:
    """One node: this host. Several: ``node1``..``nodeN``, each slurmd in its own UTS namespace (its own
    hostname) on 127.0.0.1 with its own port, spool, pid file and log."""
    _ensure_installed()
    host = socket.gethostname().split(".")[0]
    names = [host] if nodes == 1 else [f"node{i}" for i in range(1, nodes + 1)]
    conf = _write_config(root, host, names, gpus)
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = SlurmCluster(root=root, conf=conf, node=names[0], env=env)
    try:
        _start(cluster, "munged", [
            "munged", "--foreground", "--force", f"--socket={root}/munge.socket", f"--key-file={key}",
            f"--pid-file={root}/munged.pid", f"--seed-file={root}/munged.seed", "--log-file=/dev/null",
        ])  # fmt: skip
        cluster.wait_for(lambda: (root / "munge.socket").exists(), 30, "munged's socket")
        _start(cluster, "slurmctld", ["slurmctld", "-D", "-c", "-i", "-f", str(conf)])
        ping = lambda: cluster.cmd("scontrol", "ping", check=False).returncode == 0  # noqa: E731
        cluster.wait_for(ping, 60, "slurmctld")
        for name in names:
            slurmd = ["slurmd", "-D", "-f", str(conf), "-N", name]
            if nodes > 1:  # its own hostname: `hostname` in a job step says which node it runs on
                slurmd = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', name, *slurmd]
            _start(cluster, f"slurmd-{name}", slurmd)

        def nodes_ready() -> bool:
            out = cluster.cmd("sinfo", "-h", "-N", "-o", "%t", check=False).stdout.split()
            return out == ["idle"] * nodes

        cluster.wait_for(nodes_ready, 60, f"nodes {names} to become idle")
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """The running one-node cluster (stopped, with its jobs cancelled, at the end of the session)."""
    cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def slurm2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A running two-node cluster, node1 and node2 (2 dummy GPUs each), both on 127.0.0.1; skipped with the
    reason where the machine forbids UTS namespaces."""
    reason = uts_namespaces_refused()
    if reason:
        pytest.skip(f"two-node SLURM tests need a UTS namespace per slurmd: {reason}")
    cluster = start_cluster(tmp_path_factory.mktemp("slurm2"), nodes=2, gpus=2)
    try:
        yield cluster
    finally:
        cluster.stop()
