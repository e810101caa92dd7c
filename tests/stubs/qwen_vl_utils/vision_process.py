from typing import Any


def fetch_video(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("videos are not used by the PathVLM-R1 recipes")
