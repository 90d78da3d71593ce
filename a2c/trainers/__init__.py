"""Layer 5: trainers, each an algorithm's step behind one protocol: standard, fused, A3C, Ray rollout workers."""
