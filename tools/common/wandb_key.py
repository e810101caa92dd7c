"""Refuse a W&B run that would die at ``wandb.init``: online mode without a key.

wandb 0.22.3 (``wandb/sdk/lib/apikey.py``) takes the key from ``WANDB_API_KEY``, else from the netrc file
(``$NETRC``, else ``~/.netrc`` or ``~/_netrc``) under the host of ``WANDB_BASE_URL`` (``api.wandb.ai``).
Without one and without a tty, ``wandb.init`` raises ``UsageError`` inside transformers' ``WandbCallback``
and EasyR1's ``WandbLogger``: after the model loaded (SFT), or after Ray, FSDP and vLLM started (GRPO).
``pathvlm run`` checks first (exit 2, one line); every sbatch job checks at its start
(``python -m tools.common.wandb_key``). The same places are read with the standard library: importing wandb
takes seconds. A key does not prove a route to W&B: a compute node without one needs ``WANDB_MODE=offline``.
"""

from __future__ import annotations

import netrc
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

ONLINE_MODES = ("online", "run", "shared")  # wandb's own names for a live run; unset means online too
DEFAULT_BASE_URL = "https://api.wandb.ai"
NETRC_FILES = (".netrc", "_netrc")


def _netrc_path(env: Mapping[str, str]) -> Path:
    if env.get("NETRC"):
        return Path(env["NETRC"]).expanduser()
    home = Path(env.get("HOME") or Path.home())
    return next((home / name for name in NETRC_FILES if (home / name).exists()), home / NETRC_FILES[0])


def has_key(env: Mapping[str, str]) -> bool:
    """True when wandb would find an API key in ``env`` or the netrc file."""
    if env.get("WANDB_API_KEY"):
        return True
    host = urlsplit(env.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).hostname
    try:
        auth = netrc.netrc(str(_netrc_path(env))).authenticators(host or "")
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(auth and auth[2])


def problem(env: Mapping[str, str]) -> str | None:
    """Why a W&B run started with ``env`` would fail at ``wandb.init``, or None."""
    mode = env.get("WANDB_MODE", "")
    if (mode or "online") not in ONLINE_MODES or has_key(env):
        return None
    said = f"WANDB_MODE={mode}" if mode else "WANDB_MODE is unset (W&B's default: online)"
    return (
        f"{said} but no W&B key (WANDB_API_KEY, or `wandb login` into {_netrc_path(env)}): wandb.init would "
        "fail after the model loaded. Set WANDB_API_KEY or run `wandb login`, or log offline with "
        "WANDB_MODE=offline (upload later with `wandb sync`)"
    )


def main() -> int:
    found = problem(os.environ)
    if found:
        print(f"error: {found}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
