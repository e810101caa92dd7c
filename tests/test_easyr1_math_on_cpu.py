"""EasyR1's own training math on CPU, with our corrections (tools/train/engines/easyr1_main.py).

- The GRPO loss: our reward function's scores go through EasyR1's ``compute_grpo_outcome_advantage`` into
  EasyR1's ``DataParallelPPOActor.update_policy`` (gloo process group of 1, the tiny Qwen2.5-VL,
  ``padding_free: false``) on responses of different lengths; its gradient is compared with the gradient of
  the recipe's objective computed here independently (``loss_avg_mode: seq``: each response's token mean,
  then the mean over responses). Unpatched EasyR1 computes the global token mean instead.
- The rollout seed: EasyR1's ``vLLMRollout`` (vLLM stubbed: not installed on CPU) seeds the engine with
  ``worker.rollout.seed`` but no longer every request. (That Ray runs both corrections in every EasyR1
  worker: tests/test_easyr1_ray_env.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rewards.easyr1 import outcome_reward
from tools.train.engines.easyr1_main import seq_mean_per_response, unseeded_requests

GROUND_TRUTH = json.dumps(
    {
        "ground_truth": "C) Adenocarcinoma",
        "question": "Which tumour is shown?",
        "options": ["A) Lymphoma", "B) Melanoma", "C) Adenocarcinoma", "D) Sarcoma"],
        "image": "/data/slide.png",
        "id": "pathmmu-1",
    }
)
LONG = "The glands are crowded and irregular; lymphoma, melanoma and sarcoma do not form glands. " * 3
RESPONSES = [  # two prompts x G = 4, lengths from 4 to ~90 tokens
    f"<think>{LONG}</think><answer>C) Adenocarcinoma</answer>",
    "<think>Glands.</think><answer>C) Adenocarcinoma</answer>",
    "<think>Sheets of small round cells.</think><answer>A) Lymphoma</answer>",
    "C) Adenocarcinoma",
    "<think>Pigment.</think><answer>B) Melanoma</answer>",
    f"<think>{LONG[:200]}</think><answer>A) Lymphoma</answer>",
    "I cannot tell.",
    f"<think>{LONG[:120]}</think><answer>C) Adenocarcinoma</answer>",
]
KL_COEF = 0.04


@pytest.fixture(scope="module")
def gloo_group(tmp_path_factory: pytest.TempPathFactory):
    """A process group of one (EasyR1's update_policy all-reduces the token count)."""
    import torch.distributed as dist

    store = tmp_path_factory.mktemp("gloo") / "store"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def grpo_advantages(tokenizer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[float]]:
    """Responses (right-padded ids) and mask, and EasyR1's GRPO advantages of our reward's scores."""
    from verl.trainer.core_algos import compute_grpo_outcome_advantage

    ids = [tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id] for text in RESPONSES]
    width = max(len(row) for row in ids)
    responses = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        responses[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
    inputs = [
        {"response": text, "response_length": len(row), "ground_truth": GROUND_TRUTH}
        for text, row in zip(RESPONSES, ids, strict=True)
    ]
    scores = [score["overall"] for score in outcome_reward(inputs)]
    token_rewards = torch.zeros(mask.shape)  # EasyR1 puts each score on the response's last token
    token_rewards[torch.arange(len(ids)), mask.sum(-1) - 1] = torch.tensor(scores)
    index = np.array(["prompt-a"] * 4 + ["prompt-b"] * 4, dtype=object)  # EasyR1 groups by the prompt's uid
    advantages, _ = compute_grpo_outcome_advantage(token_rewards, mask, index)
    return responses, mask, advantages, scores


def test_grpo_advantages_of_our_rewards(tokenizer) -> None:
    _, mask, advantages, scores = grpo_advantages(tokenizer)
    assert scores == [2.0, 2.0, 1.0, 0.0, 1.0, 1.0, 0.0, 2.0]  # format + accuracy
    per_response = advantages.sum(-1) / mask.sum(-1)  # one advantage on every token of a response
    expected = []
    for group in (torch.tensor(scores[:4]), torch.tensor(scores[4:])):
        expected += ((group - group.mean()) / (group.std() + 1e-6)).tolist()  # GRPO: (r - mean) / std
    assert per_response.tolist() == pytest.approx(expected, abs=1e-5)
    assert bool((advantages[mask == 0] == 0).all())  # padding carries no advantage


def actor_batch(tokenizer, model) -> dict[str, torch.Tensor]:
    """The tensors EasyR1's trainer hands to the actor: prompt + right-padded responses, old and reference
    log-probs, GRPO advantages."""
    responses, mask, advantages, _ = grpo_advantages(tokenizer)
    prompt = torch.tensor([tokenizer.encode("<|im_start|>user\nWhich tumour is shown?<|im_end|>\n")])
    prompt = prompt.repeat(len(RESPONSES), 1)
    input_ids = torch.cat([prompt, responses], dim=-1)
    attention_mask = torch.cat([torch.ones_like(prompt), mask], dim=-1)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}
    batch |= {"responses": responses, "response_mask": mask, "advantages": advantages}
    with torch.no_grad():
        log_probs = response_log_probs(model, batch)
    batch["old_log_probs"] = log_probs  # on-policy: ratio 1, no clipping
    batch["ref_log_probs"] = log_probs + 0.3 * torch.randn(
        log_probs.shape, generator=torch.Generator().manual_seed(0)
    )
    return batch


def response_log_probs(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    width = batch["responses"].size(-1)
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        use_cache=False,
    )
    logits = out.logits[:, -width - 1 : -1].float()
    return torch.log_softmax(logits, -1).gather(-1, batch["responses"].unsqueeze(-1)).squeeze(-1)


def objective_gradient(model, batch: dict[str, torch.Tensor], mode: str) -> list[torch.Tensor]:
    """The GRPO objective written out: clipped surrogate at ratio 1 plus beta * k3 KL, averaged per response
    then over responses (``seq``) or over all tokens (``token``)."""
    model.zero_grad()
    log_probs = response_log_probs(model, batch)
    mask = batch["response_mask"].float()
    ratio = torch.exp(log_probs - batch["old_log_probs"])
    delta = batch["ref_log_probs"] - log_probs
    per_token = -batch["advantages"] * ratio + KL_COEF * (torch.exp(delta) - delta - 1)
    if mode == "seq":
        loss = ((per_token * mask).sum(-1) / mask.sum(-1)).mean()
    else:
        loss = (per_token * mask).sum() / mask.sum()
    loss.backward()
    return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


class GradRecorder(torch.optim.Optimizer):
    """An optimizer whose step records the gradients EasyR1 accumulated (and changes nothing)."""

    def __init__(self, params) -> None:
        super().__init__(params, {})
        self.grads: list[torch.Tensor] = []

    def step(self, closure=None) -> None:
        self.grads = [
            p.grad.detach().clone()
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]


def easyr1_gradient(
    model, batch: dict[str, torch.Tensor], micro_batch: int, update_policy
) -> list[torch.Tensor]:
    from verl.protocol import DataProto
    from verl.workers.actor.config import ActorConfig
    from verl.workers.actor.dp_actor import DataParallelPPOActor

    config = ActorConfig(
        global_batch_size=len(RESPONSES),
        micro_batch_size_per_device_for_update=micro_batch,
        max_grad_norm=1e9,
        clip_ratio_low=0.2,
        clip_ratio_high=0.2,
        loss_avg_mode="seq",
        padding_free=False,
        dynamic_batching=False,
        use_torch_compile=False,
    )
    config.global_batch_size_per_device = len(RESPONSES)  # set by EasyR1's worker: global × n / world
    config.use_kl_loss, config.kl_penalty, config.kl_coef = True, "low_var_kl", KL_COEF
    optimizer = GradRecorder([p for p in model.parameters() if p.requires_grad])
    model.zero_grad()
    data = DataProto.from_dict(tensors=dict(batch), meta_info={"temperature": 1.0})
    update_policy(DataParallelPPOActor(config, model, optimizer), data)
    return optimizer.grads


def relative_error(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    diff = sum(float((x - y).pow(2).sum()) for x, y in zip(a, b, strict=True))
    return (diff / sum(float(y.pow(2).sum()) for y in b)) ** 0.5


@pytest.mark.slow
@pytest.mark.parametrize("micro_batch", [1, 2])  # 1: the paper budget's (dynamic batching needs CUDA)
def test_easyr1_update_policy_follows_the_seq_objective(
    gloo_group, tiny_model: Path, tokenizer, micro_batch: int
) -> None:
    from transformers import AutoModelForImageTextToText
    from verl.workers.actor.dp_actor import DataParallelPPOActor

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model, dtype=torch.float32)
    batch = actor_batch(tokenizer, model)
    assert len(set(batch["response_mask"].sum(-1).tolist())) == len(RESPONSES)  # all lengths differ
    want = {mode: objective_gradient(model, batch, mode) for mode in ("seq", "token")}

    unpatched = DataParallelPPOActor.update_policy
    old = easyr1_gradient(model, batch, micro_batch, unpatched)
    new = easyr1_gradient(model, batch, micro_batch, seq_mean_per_response(unpatched))

    assert relative_error(new, want["seq"]) < 1e-5  # the recipe's objective (measured: ~2e-7)
    assert relative_error(old, want["seq"]) > 0.3  # EasyR1 alone (measured: 0.87 at micro-batch 1, 0.49 at 2)
    if micro_batch == 1:
        assert relative_error(old, want["token"]) < 1e-5  # there it is exactly the global token mean


@pytest.fixture
def stub_vllm(gpu_stubs: None):
    import vllm

    return vllm


@pytest.mark.parametrize("patched", [True, False])
def test_rollout_seed_seeds_the_engine_not_every_request(
    gloo_group, stub_vllm, tokenizer, patched: bool
) -> None:
    from verl.workers.rollout.config import RolloutConfig
    from verl.workers.rollout.vllm_rollout_spmd import vLLMRollout

    config = RolloutConfig(n=4, temperature=1.0, seed=42, tensor_parallel_size=1, limit_images=1)
    config.prompt_length, config.response_length = 1024, 1024
    rollout = object.__new__(vLLMRollout)
    (unseeded_requests(vLLMRollout.__init__) if patched else vLLMRollout.__init__)(
        rollout, "model", config, tokenizer, None
    )
    assert stub_vllm.CALLS[-1]["seed"] == 42  # the engine: reproducible runs
    assert (rollout.sampling_params.n, rollout.sampling_params.temperature) == (4, 1.0)
    if patched:
        assert rollout.sampling_params.seed is None  # each step draws new noise
    else:
        assert rollout.sampling_params.seed == 42  # EasyR1 alone: the same noise at every step
