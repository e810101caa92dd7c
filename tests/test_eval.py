"""`pathvlm eval` on the tiny model and small synthetic eval files: files, metrics, batching, resume."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.cli import main
from tools.common.pixels import load_image
from tools.common.prompt import build_prompt
from tools.evaluation.eval_backends import HFBackend
from tools.evaluation.eval_files import read_records
from tools.evaluation.evaluate import evaluate, evaluate_separately, output_dir
from tools.evaluation.generation import Generation, Request
from tools.evaluation.settings import EvalSettings, training_settings

ITEM_FIELDS = {
    "id",
    "subset",
    "image",
    "prompt_sha256",
    "output",
    "parsed_letter",
    "parsed_text",
    "correct",
    "letter_correct",
    "output_tokens",
    "format_ok",
    "official_correct",
    "contract_aligned_correct",
}
OPTIONS = ["A) Adenocarcinoma", "B) Lymphoma", "C) Normal tissue", "D) Melanoma"]


def write_eval_file(
    path: Path, n: int, subsets: Sequence[str] = ("PubMed", "EduContent"), seed: int = 0
) -> Path:
    """``n`` eval rows with small random PNGs of varied sizes (so batches need padding)."""
    rng = np.random.default_rng(seed)
    image_dir = path.parent / f"{path.stem}_images"
    image_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(n):
        height, width = (int(v) for v in rng.integers(30, 160, size=2))
        image = image_dir / f"{index}.png"
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(image)
        rows.append(
            {
                "id": f"{path.stem}-{index}",
                "subset": subsets[index % len(subsets)],
                "image": str(image.resolve()),
                "question": f"Which diagnosis fits image {index}?" + " Describe it." * (index % 3),
                "options": OPTIONS,
                "answer": OPTIONS[index % len(OPTIONS)],
            }
        )
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_eval(model: Path | str, data: Path, out: Path, *extra: str) -> int:
    return main(["eval", "--model", str(model), "--data", str(data), "--out", str(out), *extra])


def test_eval_writes_items_and_summary(tiny_model: Path, tmp_path: Path) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 6)
    assert run_eval(tiny_model, data, tmp_path / "out", "--max-new-tokens", "8", "--batch-size", "4") == 0

    items = read_jsonl(tmp_path / "out" / "test" / "items.jsonl")
    assert [item["id"] for item in items] == [f"test-{i}" for i in range(6)]
    for item in items:
        assert set(item) == ITEM_FIELDS
        assert len(item["prompt_sha256"]) == 64
        assert 0 <= item["output_tokens"] <= 8
        assert isinstance(item["output"], str)
    rows = read_jsonl(data)
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model)
    for item, row in zip(items, rows, strict=True):
        content = [{"type": "image"}, {"type": "text", "text": build_prompt(row["question"], row["options"])}]
        chat = processor.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
        )
        assert item["prompt_sha256"] == hashlib.sha256(chat.encode()).hexdigest()

    summary = json.loads((tmp_path / "out" / "test" / "summary.json").read_text())
    assert summary["n"] == 6
    assert summary["model"] == str(tiny_model)
    assert summary["dataset"] == "test"
    assert len(summary["data_sha256"]) == 64
    for key in ("accuracy", "letter_accuracy", "format_failure_rate", "parse_failure_rate"):
        assert 0.0 <= summary[key] <= 1.0
    low, high = summary["accuracy_ci"]
    assert low <= summary["accuracy"] <= high
    assert summary["avg_output_tokens"] == pytest.approx(sum(i["output_tokens"] for i in items) / 6)
    assert set(summary["per_subset"]) == {"PubMed", "EduContent"}
    assert summary["per_subset"]["PubMed"]["n"] == 3
    assert summary["items_per_second"] > 0


class ScriptedBackend:
    """Stands in for a model: answers each question with a fixed output."""

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs
        self.calls: list[int] = []

    def render(self, prompt: str) -> str:
        return f"<chat>{prompt}</chat>"

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        self.calls.append(len(requests))
        texts = [next(o for q, o in self.outputs.items() if q in r.prompt) for r in requests]
        return [Generation(text, len(text.split())) for text in texts]

    def accounting(self) -> dict:
        return {}

    def close(self) -> None:
        pass


def test_evaluate_runs_in_process(tiny_model: Path, tmp_path: Path) -> None:
    """``evaluate(model, datasets, settings)`` is a plain call: the summaries come back, the folder holds the
    records, and a second call with the same settings finds the folder up to date (no model loaded)."""
    data = write_eval_file(tmp_path / "test.jsonl", 3)
    settings = EvalSettings(max_new_tokens=4, max_pixels=6272, batch_size=2)
    [summary] = evaluate(str(tiny_model), [data], settings, out=tmp_path / "out")
    assert (summary["n"], summary["max_new_tokens"], summary["max_pixels"]) == (3, 4, 6272)
    assert {r["id"] for r in read_jsonl(tmp_path / "out" / "test" / "items.jsonl")} == {
        f"test-{i}" for i in range(3)
    }
    assert evaluate(str(tiny_model), [data], settings, out=tmp_path / "out") == []


def test_scoring_uses_reward_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        ("q-strict", "<think>nuclei</think><answer>B) Lymphoma</answer>", "PubMed"),
        ("q-letter", "<think>nuclei</think><answer>B) Melanoma</answer>", "PubMed"),
        ("q-untagged", "The answer is B) Lymphoma", "EduContent"),
        ("q-nothink", "<answer>C) Normal tissue</answer>", "EduContent"),
    ]
    data = tmp_path / "test.jsonl"
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(image)
    data.write_text(
        "".join(
            json.dumps(
                {
                    "id": q,
                    "subset": s,
                    "image": str(image),
                    "question": q,
                    "options": OPTIONS,
                    "answer": OPTIONS[1],
                }
            )
            + "\n"
            for q, _, s in rows
        )
    )
    backend = ScriptedBackend({q: output for q, output, _ in rows})
    monkeypatch.setattr("tools.evaluation.evaluate.make_backend", lambda *a, **k: backend)
    assert run_eval("scripted", data, tmp_path / "out") == 0

    items = {item["id"]: item for item in read_jsonl(tmp_path / "out" / "test" / "items.jsonl")}
    assert (
        items["q-strict"]["correct"],
        items["q-strict"]["letter_correct"],
        items["q-strict"]["format_ok"],
    ) == (
        True,
        True,
        True,
    )
    assert (items["q-strict"]["parsed_letter"], items["q-strict"]["parsed_text"]) == ("B", "lymphoma")
    assert (items["q-letter"]["correct"], items["q-letter"]["letter_correct"]) == (False, True)
    assert items["q-untagged"]["parsed_letter"] is None and not items["q-untagged"]["format_ok"]
    assert items["q-nothink"]["parsed_letter"] == "C" and not items["q-nothink"]["format_ok"]
    assert items["q-strict"]["prompt_sha256"] != items["q-letter"]["prompt_sha256"]
    assert {item["image"] for item in items.values()} == {str(image)}  # the report's cluster key

    summary = json.loads((tmp_path / "out" / "test" / "summary.json").read_text())
    assert summary["accuracy"] == 0.25
    assert summary["letter_accuracy"] == 0.5
    assert summary["format_failure_rate"] == 0.5
    assert summary["parse_failure_rate"] == 0.25
    assert summary["avg_output_tokens"] == pytest.approx((2 + 2 + 5 + 3) / 4)
    assert summary["parse_rate"] == 0.75  # the authors' parse rate: 1 - parse_failure_rate
    assert summary["cap_rate"] == 0.0
    assert summary["per_subset"]["PubMed"]["n"] == 2 and summary["per_subset"]["PubMed"]["accuracy"] == 0.5
    assert summary["per_subset"]["EduContent"]["accuracy"] == 0.0
    assert backend.calls == [4]  # hf default batch size 8 covers the four items in one call


def test_batched_generation_equals_one_by_one(tiny_model: Path, tmp_path: Path) -> None:
    data = read_jsonl(write_eval_file(tmp_path / "test.jsonl", 6))
    requests = [Request(build_prompt(row["question"], row["options"]), row["image"]) for row in data]
    backend = HFBackend(str(tiny_model), EvalSettings(max_new_tokens=24))
    batched = backend.generate(requests)
    single = [backend.generate([request])[0] for request in requests]
    assert batched == single
    assert len({g.text for g in batched}) > 1  # different prompts and image sizes, different answers


def test_load_image_resizes_like_easyr1(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("L", (200, 100)).save(path)
    assert load_image(str(path), None, 5000).size == (100, 50)
    assert load_image(str(path), 80_000, None).size == (400, 200)
    image = load_image(str(path), None, None)
    assert image.size == (200, 100) and image.mode == "RGB"


def test_max_pixels_limits_image_tokens(tiny_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (224, 224)).save(path)
    small = HFBackend(str(tiny_model), EvalSettings(max_new_tokens=1, max_pixels=56 * 56))
    inputs = small.processor(text=[small.render("q")], images=[small.image(str(path))], return_tensors="pt")
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 4]]  # 56 x 56 pixels in 14-pixel patches


def test_resume_after_torn_write(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 7)
    out = tmp_path / "out"
    args = ("--max-new-tokens", "8", "--batch-size", "3")
    assert run_eval(tiny_model, data, out, *args) == 0
    items_path = out / "test" / "items.jsonl"
    full = read_jsonl(items_path)
    summary = json.loads((out / "test" / "summary.json").read_text())

    # An interrupted run: three complete records and half of the fourth, no summary.
    lines = items_path.read_text().splitlines(keepends=True)
    items_path.write_text("".join(lines[:3]) + lines[3][:20])
    (out / "test" / "summary.json").unlink()

    import tools.evaluation.eval_backends

    generated: list[int] = []
    real_generate = tools.evaluation.eval_backends.HFBackend.generate

    def counting_generate(self, requests):
        generated.append(len(requests))
        return real_generate(self, requests)

    monkeypatch.setattr(tools.evaluation.eval_backends.HFBackend, "generate", counting_generate)
    assert run_eval(tiny_model, data, out, *args) == 0
    assert sum(generated) == 4
    resumed = read_jsonl(items_path)
    assert sorted(r["id"] for r in resumed) == sorted(r["id"] for r in full)
    assert {r["id"]: r for r in resumed} == {r["id"]: r for r in full}
    resumed_summary = json.loads((out / "test" / "summary.json").read_text())
    summary.pop("items_per_second")
    resumed_summary.pop("items_per_second")
    assert resumed_summary == summary


@pytest.mark.slow
def test_resume_after_kill(tiny_model: Path, tmp_path: Path) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 16)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tools.cli", "eval", "--model", str(tiny_model), "--data", str(data)]
    command += ["--out", str(out), "--max-new-tokens", "16", "--batch-size", "1"]
    items_path = out / "test" / "items.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if items_path.exists() and len(items_path.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = read_records(items_path, repair=True)
    assert 3 <= len(partial) < 16, "the run was not interrupted part-way"
    assert not (out / "test" / "summary.json").exists()

    assert subprocess.run(command, env=env, capture_output=True, check=False).returncode == 0
    resumed = read_jsonl(items_path)
    assert len(resumed) == 16 and len({r["id"] for r in resumed}) == 16
    for record in resumed:
        if record["id"] in partial:
            assert record == partial[record["id"]]

    fresh = tmp_path / "fresh"
    assert run_eval(tiny_model, data, fresh, "--max-new-tokens", "16", "--batch-size", "4") == 0
    assert {r["id"]: r for r in read_jsonl(fresh / "test" / "items.jsonl")} == {r["id"]: r for r in resumed}


def test_finished_eval_is_skipped_and_settings_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 3)
    backend = ScriptedBackend({"Which": "<think>a</think><answer>A) Adenocarcinoma</answer>"})
    monkeypatch.setattr("tools.evaluation.evaluate.make_backend", lambda *a, **k: backend)
    assert run_eval("scripted", data, tmp_path / "out") == 0
    assert run_eval("scripted", data, tmp_path / "out") == 0
    assert "up to date" in capsys.readouterr().out
    assert backend.calls == [3]
    with pytest.raises(SystemExit, match="other settings"):
        run_eval("scripted", data, tmp_path / "out", "--max-new-tokens", "16")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            json.dumps({"id": "x", "question": "q"}) + "\n",
            r"bad\.jsonl:1: eval item lacks \['subset', 'image'",
        ),
        ("", r"bad\.jsonl: no eval items"),
        ("{not json\n", r"bad\.jsonl:1: not UTF-8 JSON"),
        (b"\xff\xfe{}\n", r"bad\.jsonl:1: not UTF-8 JSON"),
        ("[1]\n", r"bad\.jsonl:1: expected a JSON object"),
    ],
)
def test_bad_eval_rows_name_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: str | bytes, message: str
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert run_eval("scripted", data, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_duplicate_eval_ids_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = write_eval_file(tmp_path / "bad.jsonl", 2)
    lines = data.read_text().splitlines(keepends=True)
    data.write_text(lines[0] + lines[0])
    assert run_eval("scripted", data, tmp_path / "out") == 2
    assert "bad.jsonl:2: duplicate id 'bad-0'" in capsys.readouterr().err


def test_output_dir_layout(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    model = runs / "7b" / "beta" / "model"
    model.mkdir(parents=True)
    (model.parent / "DONE").write_text("hash\n")
    assert output_dir(str(model), "test", None, None, runs) == model.absolute().parent / "eval" / "test"
    assert output_dir("Qwen/Qwen2.5-VL-7B-Instruct", "isic2020", None, "7b", runs) == (
        runs / "7b" / "base" / "eval" / "isic2020"
    )
    assert output_dir(str(model), "test", tmp_path / "o", None, runs) == tmp_path / "o" / "test"
    with pytest.raises(SystemExit, match="pass --out DIR or --size SIZE"):
        output_dir("Qwen/Qwen2.5-VL-7B-Instruct", "test", None, None, runs)


@pytest.mark.slow
def test_eval_all_covers_finished_stages_and_base(tiny_model: Path, tmp_path: Path) -> None:
    runs, data_root = tmp_path / "runs", tmp_path / "data"
    (data_root / "pathmmu" / "eval").mkdir(parents=True)
    (data_root / "omnimedvqa" / "eval").mkdir(parents=True)
    write_eval_file(data_root / "pathmmu" / "eval" / "test.jsonl", 2)
    write_eval_file(data_root / "omnimedvqa" / "eval" / "isic2020.jsonl", 2, subsets=("ISIC2020",))
    for stage, done in (("alpha", True), ("beta", False)):
        (runs / "tiny" / stage).mkdir(parents=True)
        (runs / "tiny" / stage / "model").symlink_to(tiny_model, target_is_directory=True)
        pixels = "easyr1: {data: {max_pixels: 6272, min_pixels: 3136}}"
        (runs / "tiny" / stage / "config.yaml").write_text(
            f"experiment: exp\nbase_model: {tiny_model}\n{pixels}\n"
        )
        if done:
            (runs / "tiny" / stage / "DONE").write_text("hash\n")
    argv = [
        "eval-all",
        "--size",
        "tiny",
        "--profile",
        "cpu",  # its eval_backend: hf
        "--runs",
        str(runs),
        "--data-root",
        str(data_root),
        "--max-new-tokens",
        "4",
    ]
    assert main(argv) == 0
    found = sorted(str(p.parent.relative_to(runs)) for p in runs.glob("*/*/eval/*/summary.json"))
    assert found == [
        "tiny/alpha/eval/isic2020",
        "tiny/alpha/eval/test",
        "tiny/base/eval/isic2020",
        "tiny/base/eval/test",
    ]
    base = json.loads((runs / "tiny" / "base" / "eval" / "test" / "summary.json").read_text())
    assert (base["model"], base["max_pixels"], base["min_pixels"]) == (str(tiny_model), 6272, 3136)


def test_training_settings_come_from_stage_configs(tmp_path: Path) -> None:
    sft, grpo = tmp_path / "sft.yaml", tmp_path / "grpo.yaml"
    sft.write_text("base_model: Qwen/x\nllamafactory: {image_max_pixels: 401408, image_min_pixels: 3136}\n")
    grpo.write_text("base_model: Qwen/x\neasyr1: {data: {max_pixels: 401408, min_pixels: 3136}}\n")
    expected = {"base_model": "Qwen/x", "max_pixels": 401408, "min_pixels": 3136}
    assert training_settings([sft, grpo], "--flags") == expected
    grpo.write_text("base_model: Qwen/y\neasyr1: {data: {max_pixels: 12544}}\n")
    with pytest.raises(SystemExit, match=r"disagree on .*'base_model': \['Qwen/x', 'Qwen/y'\].*pass --flags"):
        training_settings([sft, grpo], "--flags")


def _vllm_available() -> bool:
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(_vllm_available(), reason="vLLM is installed here")
def test_vllm_backend_without_vllm_says_so(tiny_model: Path) -> None:
    from tools.evaluation.evaluate import make_backend

    with pytest.raises(SystemExit, match="needs vLLM"):
        make_backend(str(tiny_model), EvalSettings(backend="vllm", max_new_tokens=4))


@pytest.mark.slow
@pytest.mark.skipif(not _vllm_available(), reason="needs a GPU with vLLM (the gpu environment)")
def test_vllm_and_hf_give_the_same_outputs(tiny_model: Path, tmp_path: Path) -> None:
    data = write_eval_file(tmp_path / "test.jsonl", 8)
    for backend in ("hf", "vllm"):
        args = ("--backend", backend, "--dtype", "float32", "--max-new-tokens", "32")
        assert run_eval(tiny_model, data, tmp_path / backend, *args) == 0
    hf, vllm = (read_jsonl(tmp_path / b / "test" / "items.jsonl") for b in ("hf", "vllm"))
    assert {r["id"]: r for r in hf} == {r["id"]: r for r in vllm}


def test_vllm_engine_gets_the_recipes_length_limit_and_tensor_parallelism(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vLLM's LLM(...) arguments through `pathvlm eval --backend vllm` (a recording stand-in for vLLM):
    max_model_len is the prompt + output limit, not the model's 128k context; tensor parallelism as asked."""
    import types

    created: list[dict] = []

    class LLM:
        def __init__(self, **kwargs: object) -> None:
            created.append(kwargs)

        def generate(self, prompts: list, sampling: object, use_tqdm: bool) -> list:
            output = types.SimpleNamespace(token_ids=[])
            return [types.SimpleNamespace(outputs=[output]) for _ in prompts]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=lambda **k: k))
    data = write_eval_file(tmp_path / "test.jsonl", 2)
    args = ("--backend", "vllm", "--max-new-tokens", "512", "--tensor-parallel-size", "2")
    assert run_eval(tiny_model, data, tmp_path / "out", *args) == 0
    assert created[0]["max_model_len"] == 1024 + 512 and created[0]["tensor_parallel_size"] == 2


@pytest.mark.skipif(_vllm_available(), reason="vLLM is installed here")
def test_vllm_evaluates_in_a_child_process(
    tiny_model: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """With vLLM, eval-all and selection evaluate each model in a child process (its end frees the GPU
    memory); the child's failure comes back as False with its message, and this process goes on."""
    data = write_eval_file(tmp_path / "test.jsonl", 1)
    settings = EvalSettings(backend="vllm", max_new_tokens=4)
    assert evaluate_separately(str(tiny_model), [data], settings, out=tmp_path / "out") is False
    assert "needs vLLM" in capfd.readouterr().err
