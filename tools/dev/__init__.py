"""The development harness (tiny model, fake judge, synthetic data, smoke).

No production module imports it."""
