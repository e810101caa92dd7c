"""Dataset conversion: PathMMU and OmniMedVQA to disjoint splits for LLaMA-Factory, EasyR1 and evaluation.

``pathvlm data {pathmmu,omnimedvqa,synth,check}``; the Python API lives in the submodules
(``pathmmu.convert_pathmmu``, ``omnimedvqa.convert_omnimedvqa``, ``synth.write_synthetic_*``,
``check.check_output``).
"""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """Where generated datasets live: ``$PATHVLM_DATA`` or ``data/generated``."""
    return Path(os.environ.get("PATHVLM_DATA", "data/generated"))
