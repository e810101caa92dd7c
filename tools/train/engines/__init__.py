"""Training engines: what the runner asks of one (``base.Engine``) and one module per engine with its child
entry point beside it: ``llamafactory`` (SFT; child ``sft_train``), ``easyr1`` (GRPO on GPUs; child
``easyr1_main``), ``trl`` (GRPO on a CPU; child ``trl_grpo``). The runner picks one by the recipe section and
the profile's ``grpo_engine`` (``tools.train.runner.ENGINES``)."""
