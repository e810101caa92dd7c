"""Dataset conversion: PathMMU and OmniMedVQA to disjoint splits for LLaMA-Factory, EasyR1 and evaluation.

``pathvlm data {pathmmu,omnimedvqa,synth,check}``; the Python API lives in the submodules
(``pathmmu.convert_pathmmu``, ``omnimedvqa.convert_omnimedvqa``, ``check.check_output``).
"""
