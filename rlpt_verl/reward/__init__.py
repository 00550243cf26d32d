"""Reward managers for verl 0.9.1's reward loop (verl 0.9.1) and their pure scoring logic."""
