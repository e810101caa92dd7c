class LoRARequest:
    pass
