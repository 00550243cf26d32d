"""The prepare report: one JSON with the accounting, and an HTML page of bar charts (inline SVG, no deps)."""

from __future__ import annotations

import html
from collections import Counter

from .readers import splits_lines

STAGES = ("normalize", "filter", "language", "dedup", "decontaminate", "quality")  # in pipeline order


def _sum(dicts) -> Counter:
    total = Counter()
    for d in dicts:
        total.update(d)
    return total


def build_report(cfg, split: dict, clean: list[dict], clusters: dict, final: list[dict]) -> dict:
    """Totals per stage and reason, with the accounting identity checked."""
    drops = _sum([c["drops"] for c in clean] + [f["drops"] for f in final])
    by_stage = Counter()
    for key, n in drops.items():
        by_stage[key.split(":", 1)[0]] += n
    kept = sum(f["kept"] for f in final)
    documents = split["documents"]
    flow, remaining = [], documents  # per stage: in = out + dropped, and the last out is what was kept
    for stage in STAGES:
        dropped = by_stage.get(stage, 0)
        flow.append({"stage": stage, "in": remaining, "dropped": dropped, "out": remaining - dropped})
        remaining -= dropped
    return {
        "config": cfg.fingerprint(),
        "engine": {"engine": cfg.engine, "workers": cfg.workers},
        "records_skipped_at_read": split["skipped_at_read"],
        "files_skipped": split["files_skipped"],
        "files_skipped_examples": split.get("files_skipped_examples", {}),
        "dataset_splits": split.get("dataset_splits", {}),
        "documents_in": documents,
        "documents_kept": kept,
        "documents_dropped": sum(drops.values()),
        "accounting_ok": documents == kept + sum(drops.values()) and remaining == kept,
        "stages": flow,
        "dropped_by_stage": dict(sorted(by_stage.items())),
        "dropped_by_reason": dict(sorted(drops.items())),
        "near_duplicate_clusters": {
            "clusters": clusters["clusters"],
            "cluster_size_hist": {str(k): v for k, v in clusters["size_hist"].items()},
        },
        "pii": dict(sorted(_sum(f["pii"] for f in final).items())),
        "documents_with_pii": sum(f["docs_with_pii"] for f in final),
        "decontamination_hits": dict(sorted(_sum(f["decontam_hits"] for f in final).items())),
        "quality": {
            "unparsed_kept": sum(f["quality_unparsed"] for f in final),
            "requests": sum(f["quality_requests"] for f in final),
        },
        "length_hist_chars": {
            "before": split["length_hist"],
            "after": dict(_sum(f["kept_length_hist"] for f in final)),
        },
        "shards": split["shards"],
        "outputs": {"kept": "kept/part-*.parquet", "dropped": "dropped/part-*.parquet"},
    }


def format_summary(report: dict, output: str) -> str:
    lines = [
        f"documents in: {report['documents_in']} (+{sum(report['records_skipped_at_read'].values())} records "
        f"unreadable {report['records_skipped_at_read']}), kept: {report['documents_kept']}, dropped: "
        f"{report['documents_dropped']} {report['dropped_by_stage']}; in = kept + dropped: {report['accounting_ok']}",
        "per stage (in -> out): "
        + ", ".join(
            f"{s['stage']} {s['in']}->{s['out']}" for s in report["stages"] if s["dropped"] or s["stage"] == "dedup"
        ),
        f"drops by reason: {report['dropped_by_reason']}",
        f"near-duplicate clusters: {report['near_duplicate_clusters']['clusters']}, sizes "
        f"{report['near_duplicate_clusters']['cluster_size_hist']}",
        f"PII masked: {report['pii']} in {report['documents_with_pii']} kept documents",
    ]
    if report["files_skipped"]:
        named = {k: report.get("files_skipped_examples", {}).get(k, []) for k in report["files_skipped"]}
        lines.append(f"files not read: {report['files_skipped']} e.g. {named}")
    lines += splits_lines(report.get("dataset_splits"))
    if report["decontamination_hits"]:
        lines.append(f"contaminated documents dropped per benchmark: {report['decontamination_hits']}")
    if report.get("work_removed"):
        lines.append("removed work/ (shards and signatures resume no longer needs; --keep-work keeps them)")
    lines.append(
        f"wrote kept/ and dropped/ (sharded parquet), prepare_report.json and prepare_report.html to {output}; "
        f"next: rlpt build {output}/kept --id-field id ..."
    )
    return "\n".join(lines)


def _bars(title: str, data: dict, color: str = "#4a7fb5", second: dict | None = None) -> str:
    """A horizontal bar chart; ``second`` draws a paired series (e.g. after vs before)."""
    items = list(data.items())
    if not items:
        return f"<h3>{html.escape(title)}</h3><p>none</p>"
    peak = max([v for _, v in items] + list((second or {}).values()) + [1])
    row, width, label_w = 22, 420, 220
    height = row * len(items) + 10
    parts = [f'<svg width="{label_w + width + 80}" height="{height}" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, value) in enumerate(items):
        y = 5 + i * row
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">{html.escape(str(label))}</text>'
        )
        if second is not None:
            w2 = width * second.get(label, 0) / peak
            parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{w2:.1f}" height="{row - 6}" fill="#ccc"/>')
        w = width * value / peak
        parts.append(f'<rect x="{label_w}" y="{y + 5}" width="{w:.1f}" height="{row - 12}" fill="{color}"/>')
        parts.append(f'<text x="{label_w + w + 4}" y="{y + 14}" font-size="11">{value}</text>')
    parts.append("</svg>")
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def write_html(report: dict, path: str) -> None:
    lengths = report["length_hist_chars"]
    body = [
        "<h1>rlpt prepare</h1>",
        f"<p>{report['documents_in']} documents in, {report['documents_kept']} kept, "
        f"{report['documents_dropped']} dropped (in = kept + dropped: {report['accounting_ok']}).</p>",
        _bars("Documents left after each stage", {s["stage"]: s["out"] for s in report["stages"]}, "#4a9a5a"),
        _bars("Dropped documents by stage", report["dropped_by_stage"], "#b5574a"),
        _bars("Dropped documents by reason", report["dropped_by_reason"], "#b5574a"),
        _bars(
            "Document length in characters (bin start): kept (blue) over input (grey)",
            {k: lengths["after"].get(k, 0) for k in lengths["before"]},
            second=lengths["before"],
        ),
        _bars(
            "Near-duplicate cluster sizes (documents per cluster: clusters)",
            report["near_duplicate_clusters"]["cluster_size_hist"],
        ),
        _bars("PII masked, by type", report["pii"], "#7a5ab5"),
        _bars("Contaminated documents by benchmark", report["decontamination_hits"], "#b59a4a"),
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write('<!doctype html><meta charset="utf-8"><title>rlpt prepare report</title>')
        f.write('<body style="font-family: sans-serif; max-width: 900px">' + "\n".join(body) + "</body>")
