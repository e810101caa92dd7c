"""`pathvlm report`: every evaluation under a runs root, loaded once, as the paper's tables and more."""
