"""Layer 7: many fused runs trained as one compiled program, with their member configs, driver and report."""
