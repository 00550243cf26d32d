"""datatrove's MinHash near-dedup alone, with its defaults, for bench_dedup_recall.py; benchmark venv only.

python _datatrove_dedup.py CORPUS.jsonl WORKDIR      (removed documents go to WORKDIR/removed/)
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
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter


def main(corpus: str, work: str) -> None:
    import os

    cfg = MinhashConfig()
    data_dir, name = os.path.dirname(corpus), os.path.basename(corpus)

    def run(pipeline, log, tasks=1):
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=f"{work}/logs/{log}").run()

    reader = JsonlReader(data_dir, glob_pattern=name, id_key="id")
    run([reader, MinhashDedupSignature(f"{work}/sigs", config=cfg)], "sigs")
    run([MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=cfg)], "buckets", tasks=cfg.num_buckets)
    run([MinhashDedupCluster(f"{work}/buckets", f"{work}/clusters", config=cfg)], "clusters")
    run(
        [
            JsonlReader(data_dir, glob_pattern=name, id_key="id"),
            MinhashDedupFilter(f"{work}/clusters", exclusion_writer=JsonlWriter(f"{work}/removed", compression=None)),
            JsonlWriter(f"{work}/kept", compression=None),
        ],
        "filter_dups",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
