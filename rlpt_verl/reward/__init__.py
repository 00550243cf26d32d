"""Reward managers for verl 0.9.1's reward loop (SPEC §4) and their pure scoring logic."""
