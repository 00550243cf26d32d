"""Corpus preparation (`rlpt prepare`; installed as ``rlpt_verl.data_tools``, never as top-level ``data_tools``).

What is here, honestly: readers that stream :class:`Document` objects and count what they drop by reason
(:class:`StepStats`); one pure function per stage (``normalize_text``, ``filter_reason``, ``signature`` and
``cluster``, ``mask_pii``, ``EvalIndex``, the quality rater), each configured by a frozen dataclass; and
:mod:`.prepare`, which composes the stages into resumable per-shard phases run by a local process pool or
Ray tasks. The stages are functions called by the phases, not datatrove-style pipeline step classes.
"""

from .document import Document, StepStats
from .readers import CorpusReader, ReaderConfig, RecordReader, refuse_output_inside, splits_lines

__all__ = [
    "Document",
    "StepStats",
    "CorpusReader",
    "ReaderConfig",
    "RecordReader",
    "refuse_output_inside",
    "splits_lines",
]
