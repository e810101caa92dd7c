"""Before ``make setup-gpu`` builds anything: is this host able to take the gpu environment's binary wheels?

Run with the Python that creates ``.venv-gpu`` (standard library only): ``python3 tools/gpu_host_check.py``.
flash-attn 2.8.3's prebuilt wheels (and vLLM 0.11's) are built for CPython 3.11 here (the wheel tag
``cp311``) and need glibc >= 2.32; on an older host the pip install fails late, or flash-attn falls back to a
multi-hour source build. Triton (under vLLM and torch.compile) compiles small C launchers at run time, on
the compute node: it needs a C compiler (``$CC``, else gcc, else clang) and this Python's headers
(``Python.h``), else the first GRPO step fails after the models have loaded. Exit 2 with what to do
instead: a newer node, the missing packages, or EasyR1's published container image.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import sysconfig
from pathlib import Path

PYTHON = (3, 11)
GLIBC = (2, 32)
FLASH_ATTN_WHEEL = "flash_attn-2.8.3+cu12torch2.8cxx11abiTRUE-cp311-cp311-linux_x86_64.whl"
CONTAINER = "docker://hiyouga/verl:ngc-th2.8.0-cu12.9-vllm0.11.0"  # EasyR1's README: torch 2.8, vLLM 0.11
FALLBACK = (
    f"Fallback: EasyR1's published container image (README.md, Environments): apptainer pull easyr1.sif "
    f"{CONTAINER}"
)


def c_compiler() -> str | None:
    """The compiler Triton builds with (its ``runtime/build.py``): ``$CC``, else gcc, else clang."""
    return os.environ.get("CC") or shutil.which("gcc") or shutil.which("clang")


def python_header() -> Path | None:
    """``Python.h`` where Triton looks for it (``sysconfig``'s include path), or None."""
    scheme = sysconfig.get_default_scheme()
    include = sysconfig.get_paths(scheme="posix_prefix" if scheme == "posix_local" else scheme)["include"]
    header = Path(include) / "Python.h"
    return header if header.is_file() else None


def problems(
    python: tuple[int, int], libc: tuple[str, str], compiler: str | None, header: Path | None
) -> list[str]:
    found = []
    if python != PYTHON:
        found.append(
            f"Python {python[0]}.{python[1]}: the gpu environment is pinned for Python 3.11 "
            f"({FLASH_ATTN_WHEEL}); run make setup-gpu PYTHON=python3.11"
        )
    name, version = libc
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) if version else ()
    if name != "glibc" or len(parts) < 2 or parts < GLIBC:
        found.append(
            f"C library {name or 'unknown'} {version or '?'}: flash-attn's and vLLM's prebuilt wheels need "
            f"glibc >= {GLIBC[0]}.{GLIBC[1]}"
        )
    if compiler is None:
        found.append(
            "no C compiler (gcc, clang or $CC): Triton compiles its kernels at run time; install gcc "
            "(apt install gcc, or module load gcc) or set CC"
        )
    if header is None:
        found.append(
            f"no Python.h for Python {python[0]}.{python[1]} (in {sysconfig.get_paths()['include']}): "
            f"Triton compiles against it at run time; install python{python[0]}.{python[1]}-dev (apt) or "
            "use a Python built with its headers (pyenv, conda, a module)"
        )
    return found


def main() -> int:
    compiler = c_compiler()
    found = problems(sys.version_info[:2], platform.libc_ver(), compiler, python_header())
    if not found:
        print(
            f"gpu host check: Python {platform.python_version()} with headers, "
            f"glibc {platform.libc_ver()[1]}, C compiler {compiler}: ok"
        )
        return 0
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    print(FALLBACK, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
