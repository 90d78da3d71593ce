"""Layer 4: reading finished runs: their data, learning-curve plots, results tables."""
