"""Corpus preparation steps (installed as ``rlpt_verl.data_tools``, never as top-level ``data_tools``).

Each step is a small class with one job that streams :class:`Document` objects and counts what it
forwards and drops, by reason, in the style of HF datatrove's pipeline steps.
"""

from .document import Document, StepStats
from .readers import CorpusReader, ReaderConfig, RecordReader

__all__ = ["Document", "StepStats", "CorpusReader", "ReaderConfig", "RecordReader"]
