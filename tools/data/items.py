"""The validated multiple-choice item shared by every source and writer, and its checks."""

from __future__ import annotations

import hashlib
import os
import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.data.errors import ItemError

OPTION_RE = re.compile(r"^\s*([A-Z])\s*[).:]\s*(\S.*?)\s*$", re.DOTALL)


@dataclass
class Item:
    """One multiple-choice question; ``options`` and ``answer`` are canonical ``"C) text"`` strings."""

    id: str
    subset: str
    image_ref: str  # the image as the source names it (PathMMU ``img``, OmniMedVQA ``image_path``)
    image: Path  # absolute path of that image
    question: str
    options: list[str]
    answer: str
    explanation: str = ""
    file: str = ""  # source file and item label, named by every error about this item
    label: str = ""
    sha256: str = ""  # of the image bytes, filled by hash_images


def item_error(item: Item, problem: str) -> ItemError:
    return ItemError(item.file, item.label, problem)


def absolute(path: Path) -> Path:
    """``path`` made absolute without resolving symlinks (output paths keep the source's file names)."""
    return Path(os.path.abspath(path))


def normalise(text: str) -> str:
    """Text compared for duplicates and question grouping: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def slugify(name: str) -> str:
    """``"Retinal OCT-C8"`` -> ``"retinal_oct_c8"``: lower-case, runs of non-alphanumerics -> ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def lettered_options(options: Sequence[object], file: Path, item: str) -> list[str]:
    """Check options are lettered ``A)``, ``B)``, ... in order with distinct texts; return ``"A) text"``s."""
    if len(options) < 2:
        raise ItemError(file, item, f"expected at least 2 options, got {len(options)}")
    result, seen = [], {}
    for index, option in enumerate(options):
        expected = string.ascii_uppercase[index]
        match = OPTION_RE.match(option) if isinstance(option, str) else None
        if match is None:
            raise ItemError(
                file, item, f"option {index + 1} {option!r} is not lettered like '{expected}) text'"
            )
        letter, text = match.groups()
        if letter != expected:
            problem = "duplicated" if any(o.startswith(f"{letter})") for o in result) else "out of order"
            raise ItemError(
                file, item, f"option {option!r}: letter {letter} is {problem}, expected {expected}"
            )
        key = normalise(text)
        if key in seen:
            raise ItemError(file, item, f"options {seen[key]!r} and {option!r} have the same text")
        seen[key] = option
        result.append(f"{letter}) {text}")
    return result


def letter_texts(texts: Sequence[str], file: Path, item: str) -> list[str]:
    """Label plain option texts A, B, C, ...; duplicated texts are an error."""
    return lettered_options([f"{string.ascii_uppercase[i]}) {t}" for i, t in enumerate(texts)], file, item)


def match_answer(answer: str, options: Sequence[str], file: Path, item: str) -> str:
    """The canonical option that ``answer`` (``"C) text"``) names, letter and text both matching."""
    match = OPTION_RE.match(answer)
    if match is not None:
        wanted = (match.group(1), normalise(match.group(2)))
        for option in options:
            letter, text = OPTION_RE.match(option).groups()
            if (letter, normalise(text)) == wanted:
                return option
    raise ItemError(file, item, f"answer {answer!r} is not among the options {list(options)}")


def match_answer_text(answer: str, options: Sequence[str], file: Path, item: str) -> str:
    """The canonical option whose text equals ``answer`` (an option text without its letter)."""
    for option in options:
        if normalise(OPTION_RE.match(option).group(2)) == normalise(answer):
            return option
    raise ItemError(file, item, f"answer {answer!r} matches none of the options {list(options)}")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
