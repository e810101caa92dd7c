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


def _write_config(root: Path, node: str) -> Path:
    for sub in ("state", "spool", "log", "dev"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    devices = [root / "dev" / f"nvidia{i}" for i in range(4)]
    for device in devices:  # slurmd accepts only character devices: stand-ins for /dev/nvidia[0-3]
        device.symlink_to("/dev/null")
    (root / "gres.conf").write_text(f"AutoDetect=off\nNodeName={node} Name=gpu File={root}/dev/nvidia[0-3]\n")
    conf = root / "slurm.conf"
    conf.write_text(
        f"""# one-node test cluster written by tests/slurm/conftest.py
ClusterName=pathvlm-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.socket,cred_expire=5
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
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
NodeName={node} NodeAddr=127.0.0.1 CPUs=2 RealMemory={_real_memory_mb()} Gres=gpu:4 State=UNKNOWN
PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
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
        tail = "\n".join((self.root / "log" / "slurmctld.log").read_text().splitlines()[-20:])
        return f"squeue:\n{queue}\nslurmctld.log (tail):\n{tail}"

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


def start_cluster(root: Path) -> SlurmCluster:
    _ensure_installed()
    node = socket.gethostname().split(".")[0]
    conf = _write_config(root, node)
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = SlurmCluster(root=root, conf=conf, node=node, env=env)
    try:
        _start(cluster, "munged", [
            "munged", "--foreground", "--force", f"--socket={root}/munge.socket", f"--key-file={key}",
            f"--pid-file={root}/munged.pid", f"--seed-file={root}/munged.seed", "--log-file=/dev/null",
        ])  # fmt: skip
        cluster.wait_for(lambda: (root / "munge.socket").exists(), 30, "munged's socket")
        _start(cluster, "slurmctld", ["slurmctld", "-D", "-c", "-i", "-f", str(conf)])
        ping = lambda: cluster.cmd("scontrol", "ping", check=False).returncode == 0  # noqa: E731
        cluster.wait_for(ping, 60, "slurmctld")
        _start(cluster, "slurmd", ["slurmd", "-D", "-f", str(conf), "-N", node])

        def node_ready() -> bool:
            out = cluster.cmd("sinfo", "-h", "-N", "-o", "%t", check=False).stdout.split()
            return out == ["idle"]

        cluster.wait_for(node_ready, 60, f"node {node} to become idle")
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
