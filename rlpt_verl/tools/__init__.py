"""Operator tools run by a person, never by verl: `rlpt doctor`, `rlpt judge-eval`, the quickstart, the local
test judge and the test assets.
"""
