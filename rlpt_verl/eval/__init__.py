"""`rlpt eval`: the papers' evaluation protocol (RLPT arXiv 2509.19249 §4, RPT arXiv 2506.08007 §4).

Pure logic (``passk``, ``choices``, ``fields``) is free of I/O; ``math_check`` runs Math-Verify in worker
processes; ``generate`` talks to an OpenAI-compatible server; ``report`` writes the results.
"""
