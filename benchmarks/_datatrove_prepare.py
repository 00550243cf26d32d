"""datatrove doing what `rlpt prepare` does in bench_prepare.py; runs in the benchmark venv only.

    python _datatrove_prepare.py CORPUS.jsonl WORKDIR

Stages, all with datatrove's defaults (MinHash: 5-gram shingles, 14 buckets x 8 hashes): Gopher repetition
and quality filters, PII formatter (e-mails and IPs), then the four MinHash dedup stages, writing the
survivors and the removed duplicates as JSON Lines. One task, one worker (per-core throughput).
"""

import sys

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import (
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
from datatrove.pipeline.formatters import PIIFormatter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter


def main(corpus: str, work: str) -> None:
    import os

    cfg = MinhashConfig()
    data_dir, name = os.path.dirname(corpus), os.path.basename(corpus)

    def run(pipeline, log, tasks=1):
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=f"{work}/logs/{log}").run()

    run(
        [
            JsonlReader(data_dir, glob_pattern=name, id_key="id"),
            GopherRepetitionFilter(),
            GopherQualityFilter(),
            PIIFormatter(),
            JsonlWriter(f"{work}/filtered", compression=None),
        ],
        "filter",
    )
    run([JsonlReader(f"{work}/filtered"), MinhashDedupSignature(f"{work}/sigs", config=cfg)], "sigs")
    # datatrove needs one task per bucket here; they still run one after another (workers=1)
    run([MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=cfg)], "buckets", tasks=cfg.num_buckets)
    run([MinhashDedupCluster(f"{work}/buckets", f"{work}/clusters", config=cfg)], "clusters")
    run(
        [
            JsonlReader(f"{work}/filtered"),
            MinhashDedupFilter(f"{work}/clusters", exclusion_writer=JsonlWriter(f"{work}/removed", compression=None)),
            JsonlWriter(f"{work}/kept", compression=None),
        ],
        "filter_dups",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
