"""The local evaluation backends: Hugging Face transformers (CPU, tests) and vLLM (GPU); ``openai`` (any
OpenAI-compatible endpoint) lives in ``tools/evaluation/eval_api.py``.

Both backends show the model the same text (the model's chat template around one image and the
``build_prompt`` text) and the same image as training: resized into ``min_pixels`` / ``max_pixels`` first
(``tools.common.pixels``, as EasyR1's dataset and LLaMA-Factory's plugin), then tokenised by the processor
with its own default limits (which round each side up to a multiple of 28; given ``max_pixels`` itself it
would round down where rounding up crosses it: 731×548 would be 494 image tokens instead of training's
520). They decode pure greedy:
temperature 0, no repetition penalty, no model-default sampling settings. An output stops at the first
end-of-sequence token of the model's generation config; ``output_tokens`` counts the tokens before it.
With ``samples`` > 1 (pass@k, ``tools/evaluation/passk.py``) ``generate_samples`` draws that many answers
per request at ``temperature`` (top-p 1, no top-k, no repetition penalty), seeded by ``seed``.
torch, transformers and vLLM are imported where they are used (they take seconds to import).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import takewhile
from typing import Any

from tools.common.pixels import load_image
from tools.evaluation.generation import Generation, Request
from tools.evaluation.settings import EvalSettings


def eos_token_ids(model: str) -> list[int]:
    """End-of-sequence ids from the model's generation config (Qwen: ``<|im_end|>`` and ``<|endoftext|>``)."""
    from transformers import GenerationConfig

    eos = GenerationConfig.from_pretrained(model).eos_token_id
    if eos is None:
        raise ValueError(f"{model}: generation_config.json has no eos_token_id")
    return [eos] if isinstance(eos, int) else list(eos)


class LocalBackend:
    """Loads a Qwen2.5-VL model once and answers batches of requests greedily."""

    def __init__(self, model: str, settings: EvalSettings) -> None:
        from transformers import AutoProcessor

        self.model_name = model
        self.settings = settings
        self.temperature = (settings.sampling or {}).get("temperature", 1.0)  # of generate_samples
        self.processor = AutoProcessor.from_pretrained(model)  # its default limits, as in training
        self.processor.tokenizer.padding_side = "left"
        self.eos_ids = eos_token_ids(model)

    def render(self, prompt: str) -> str:
        """The exact text the model sees: chat template, one image placeholder, the prompt, generation cue."""
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def image(self, path: str):
        """The image as training feeds it to the processor (resized into the pixel budget, RGB)."""
        return load_image(path, self.settings.min_pixels, self.settings.max_pixels)

    def finish(self, token_ids: Sequence[int]) -> Generation:
        """Cut at the first end-of-sequence token and decode without special tokens."""
        ids = list(takewhile(lambda token: token not in self.eos_ids, token_ids))
        text = self.processor.tokenizer.decode(ids, skip_special_tokens=True)
        return Generation(text=text, output_tokens=len(ids))

    def accounting(self) -> dict[str, Any]:
        """Usage of an API backend (calls, tokens, cost); local models have none."""
        return {}

    def close(self) -> None:
        """Release what the backend holds (connections); local models hold nothing to release."""
        return None


class HFBackend(LocalBackend):
    """transformers ``generate`` on a left-padded batch (Qwen2.5-VL's mRoPE positions follow the mask)."""

    def __init__(self, model: str, settings: EvalSettings) -> None:
        super().__init__(model, settings)
        import torch
        from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_dtype = "auto" if self.settings.dtype == "auto" else getattr(torch, self.settings.dtype)
        self.model = Qwen2_5_VLForConditionalGeneration.from_pretrained(self.model_name, dtype=torch_dtype)
        self.model.to(self.device).eval()
        pad_id = self.processor.tokenizer.pad_token_id
        common = {
            "max_new_tokens": self.settings.max_new_tokens,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.eos_ids[-1] if pad_id is None else pad_id,
        }
        self.generation_config = GenerationConfig(do_sample=False, **common)
        self.sampling_config = GenerationConfig(
            do_sample=True,
            temperature=self.temperature,
            top_p=1.0,
            top_k=0,
            num_return_sequences=self.settings.samples,
            **common,
        )
        self._sample_calls = 0

    def inputs(self, requests: Sequence[Request]) -> Any:
        """The model inputs of a batch: left-padded token ids with the image tokens, pixel values, grids."""
        return self.processor(
            text=[self.render(request.prompt) for request in requests],
            images=[self.image(request.image) for request in requests],
            padding=True,
            return_tensors="pt",
        )

    def _generate(self, requests: Sequence[Request], config) -> list[Generation]:
        import torch

        inputs = self.inputs(requests).to(self.device)
        with torch.inference_mode():
            output = self.model.generate(**inputs, generation_config=config, use_model_defaults=False)
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
        return [self.finish(ids) for ids in new_tokens]

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return self._generate(requests, self.generation_config)

    def generate_samples(self, requests: Sequence[Request]) -> list[list[Generation]]:
        import torch

        torch.manual_seed(self.settings.seed + self._sample_calls)  # each batch its own seeded draws
        self._sample_calls += 1
        flat = self._generate(requests, self.sampling_config)  # the samples of a request are adjacent
        return [flat[i : i + self.settings.samples] for i in range(0, len(flat), self.settings.samples)]


class VLLMBackend(LocalBackend):
    """vLLM offline ``LLM.generate`` with one image per prompt (GPU only; vLLM is imported here, lazily).

    ``max_model_len`` (``max_prompt_length`` + ``max_new_tokens``) bounds prompt + output (vLLM would
    otherwise reserve KV cache for the model's 128k context); ``tensor_parallel_size`` shards a model too
    large for one GPU (the 32B baseline)."""

    def __init__(self, model: str, settings: EvalSettings) -> None:
        super().__init__(model, settings)
        try:
            from vllm import LLM, SamplingParams
        except ImportError as error:
            raise SystemExit(
                "the vllm backend needs vLLM (the gpu environment: make setup-gpu); use --backend hf"
            ) from error

        self.llm = LLM(
            model=self.model_name,
            dtype=self.settings.dtype,
            seed=0,
            limit_mm_per_prompt={"image": 1},
            max_model_len=settings.max_prompt_length + settings.max_new_tokens,
            tensor_parallel_size=settings.tensor_parallel_size,
        )
        common = {
            "max_tokens": settings.max_new_tokens,
            "stop_token_ids": self.eos_ids,
            "skip_special_tokens": True,
        }
        self.sampling = SamplingParams(temperature=0.0, **common)
        self.multi_sampling = SamplingParams(
            n=settings.samples, temperature=self.temperature, top_p=1.0, seed=settings.seed, **common
        )

    def prompts(self, requests: Sequence[Request]) -> list[dict[str, Any]]:
        """vLLM's inputs: the rendered text and the resized image (its processor keeps its default limits)."""
        return [
            {"prompt": self.render(request.prompt), "multi_modal_data": {"image": self.image(request.image)}}
            for request in requests
        ]

    def _outputs(self, requests: Sequence[Request], sampling) -> list[Any]:
        return self.llm.generate(self.prompts(requests), sampling, use_tqdm=False)

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return [self.finish(output.outputs[0].token_ids) for output in self._outputs(requests, self.sampling)]

    def generate_samples(self, requests: Sequence[Request]) -> list[list[Generation]]:
        outputs = self._outputs(requests, self.multi_sampling)
        return [[self.finish(sample.token_ids) for sample in output.outputs] for output in outputs]
