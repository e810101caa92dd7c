"""The validated multiple-choice item shared by every source and writer, and the checks that read it from a
source file with errors that name the file and the item."""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewards.rules import accuracy_reward, normalize_option_text
from tools.common.prompt import IMAGE_TOKEN, OPTION_RE
from tools.data.errors import DataError, ItemError

BARE_LETTER_RE = re.compile(r"^\s*\(?([A-Z])\s*[).:]?\s*$")  # "A", "A)", "(A)": PathMMU reads answer[0]


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
    bare_letter: bool = False  # the source answer was a bare letter ("A"), resolved to its option


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


def check_text(value: str, what: str, file: Path | str, item: str) -> str:
    """``value`` unchanged when it can be written as UTF-8 (a lone surrogate cannot) and holds no
    ``<image>``: the prompt's image placeholder, of which a row has exactly one per image (``data check``;
    LLaMA-Factory refuses the row)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ItemError(
            file, item, f"{what} is not valid Unicode text ({exc.reason} at {exc.start})"
        ) from None
    if IMAGE_TOKEN in value:
        raise ItemError(
            file, item, f"{what} contains {IMAGE_TOKEN}, the image placeholder of the prompt: remove it"
        )
    return value


def image_file(base: Path, ref: str, file: Path, item: str, where: str) -> Path:
    """``base / ref`` when ``ref`` is a plain relative path inside ``base``, else an item error."""
    parts = ref.split("/")
    if ref.startswith("/") or "\\" in ref or any(part in ("", ".", "..") for part in parts):
        raise ItemError(file, item, f"image {ref!r} must be a relative path inside {where} (no '.', '..')")
    return absolute(base / ref)


def lettered_options(options: Sequence[object], file: Path, item: str) -> list[str]:
    """Check options are lettered ``A)``, ``B)``, ... in order with distinct texts; return ``"A) text"``s.

    Whitespace runs inside an option text (newlines too) become one space: one option per prompt line.
    """
    if not 2 <= len(options) <= len(string.ascii_uppercase):
        raise ItemError(file, item, f"expected 2 to 26 options (A-Z), got {len(options)}")
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
        check_text(option, f"option {letter}", file, item)
        key = normalize_option_text(text)
        if not key:
            raise ItemError(file, item, f"option {option!r} has no text to compare an answer with")
        if key in seen:
            raise ItemError(file, item, f"options {seen[key]!r} and {option!r} have the same text")
        seen[key] = option
        result.append(f"{letter}) {' '.join(text.split())}")
    return result


def letter_texts(texts: Sequence[str], file: Path, item: str) -> list[str]:
    """Label plain option texts A, B, C, ...; duplicated texts are an error."""
    return lettered_options([f"{string.ascii_uppercase[i]}) {t}" for i, t in enumerate(texts)], file, item)


def scorable(answer: str, options: Sequence[str], file: Path | str, item: str) -> str:
    """``answer`` if the accuracy reward gives its own text 1.0 and every other option 0.0, else an error."""
    if accuracy_reward(f"<answer>{answer}</answer>", answer) != 1.0:
        raise ItemError(
            file, item, f"answer {answer!r} would score 0 against itself: the reward cannot parse it"
        )
    for option in options:
        if option != answer and accuracy_reward(f"<answer>{option}</answer>", answer) != 0.0:
            raise ItemError(
                file, item, f"options {option!r} and {answer!r} cannot be told apart by the reward"
            )
    return answer


def match_answer(answer: str, options: Sequence[str], file: Path, item: str) -> tuple[str, bool]:
    """The canonical option that ``answer`` names, and whether it was a bare letter.

    ``"C) text"`` must match an option in letter and text; a bare letter (``"A"``, as PathMMU's own
    evaluation reads ``answer[0]``) names the option with that letter.
    """
    bare = BARE_LETTER_RE.match(answer)
    if bare is not None:
        for option in options:
            if option.startswith(f"{bare.group(1)})"):
                return scorable(option, options, file, item), True
        raise ItemError(file, item, f"answer {answer!r} names no option of {list(options)}")
    match = OPTION_RE.match(answer)
    if match is not None:
        wanted = (match.group(1), normalize_option_text(match.group(2)))
        for option in options:
            letter, text = OPTION_RE.match(option).groups()
            if (letter, normalize_option_text(text)) == wanted:
                return scorable(option, options, file, item), False
    raise ItemError(file, item, f"answer {answer!r} is not among the options {list(options)}")


def match_answer_text(answer: str, options: Sequence[str], file: Path, item: str) -> str:
    """The canonical option whose text equals ``answer`` (an option text without its letter), compared as
    the reward compares answers (case, whitespace, trailing period)."""
    wanted = normalize_option_text(answer)
    for option in options:
        if normalize_option_text(OPTION_RE.match(option).group(2)) == wanted:
            return scorable(option, options, file, item)
    raise ItemError(file, item, f"answer {answer!r} matches none of the options {list(options)}")


def load_json(path: Path, what: str) -> tuple[Any, str]:
    """Parsed JSON and the sha256 of its bytes; a missing or malformed file is a DataError."""
    if not path.is_file():
        raise DataError(f"{path} not found: expected {what} (see data/README.md)")
    raw = path.read_bytes()
    try:
        return json.loads(raw), hashlib.sha256(raw).hexdigest()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc


def expect_shape(value: Any, kind: type, path: Path, where: str, expected: str) -> None:
    if not isinstance(value, kind):
        raise DataError(f"{path}: {where} must be {expected}, got {type(value).__name__}")


def field(raw: dict[str, Any], name: str, kinds: tuple[type, ...], path: Path, label: str) -> Any:
    """``raw[name]``, which must exist, have one of ``kinds`` and (for strings) not be blank."""
    if name not in raw:
        raise ItemError(path, label, f"missing field {name!r}")
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = " or ".join(kind.__name__ for kind in kinds)
        raise ItemError(path, label, f"field {name!r} must be {names}, got {type(value).__name__}")
    if isinstance(value, str) and not value.strip():
        raise ItemError(path, label, f"field {name!r} is empty")
    return value


def item_label(raw: Any, id_key: str, path: Path, label: str) -> str:
    """``label`` plus the item's id (``id_key``, where present), for messages; ``raw`` must be an object."""
    if not isinstance(raw, dict):
        raise ItemError(path, label, f"expected an object, got {type(raw).__name__}")
    return label + (f" ({id_key}={raw[id_key]!r})" if id_key in raw else "")


def text_field(raw: dict[str, Any], name: str, path: Path, label: str) -> str:
    """A string field (``field``) that ``check_text`` accepts."""
    return check_text(field(raw, name, (str,), path, label), f"field {name!r}", path, label)
