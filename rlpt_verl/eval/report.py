"""The evaluation's outputs: a table in the papers' layout, a baseline comparison, and Pass@k curves. Pure logic.

Functions return strings; :mod:`rlpt_verl.eval.run` writes them (atomically) beside ``eval_report.json``.
"""

from __future__ import annotations

import html

from rlpt_verl.eval.passk import mean_pass_at_k

__all__ = ["bench_metrics", "table", "curve_svg"]


def bench_metrics(counts: list[tuple[int, int]], ks: tuple[int, ...]) -> dict:
    """Pass@k (unbiased) and avg@n over (n, c) per item. Pass@k is taken over the items with at least k samples;
    when that is not all of them, ``coverage`` says which share it is (never a silent average over fewer
    samples); a k above every item's n is listed in ``skipped_k``.

    >>> bench_metrics([(4, 1), (4, 4)], (1, 8))
    {'pass@1': 0.625, 'avg@n': 0.625, 'skipped_k': [8]}
    >>> bench_metrics([(2, 1), (8, 0)], (1, 4))
    {'pass@1': 0.25, 'pass@4': 0.0, 'avg@n': 0.25, 'skipped_k': [], 'coverage': {'pass@4': 0.5}}
    """
    out: dict = {}
    coverage: dict = {}
    for k in ks:
        covered = [(n, c) for n, c in counts if n >= k]
        if covered:
            out[f"pass@{k}"] = mean_pass_at_k(covered, k)
            if len(covered) < len(counts):
                coverage[f"pass@{k}"] = len(covered) / len(counts)
    out["avg@n"] = sum(c / n for n, c in counts) / len(counts)
    out["skipped_k"] = [k for k in ks if f"pass@{k}" not in out]
    if coverage:
        out["coverage"] = coverage
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def table(report: dict, ks: tuple[int, ...], baseline: dict | None = None) -> str:
    """Markdown: benchmarks × Pass@k (percent), with baseline and Δ columns when a baseline report is given.

    >>> r = {"benchmarks": {"aime24": {"metrics": {"pass@1": 0.25}, "items": 30, "n": 64}}}
    >>> print(table(r, (1,), {"benchmarks": {"aime24": {"metrics": {"pass@1": 0.2}}}}))
    | benchmark | items | n | Pass@1 | Pass@1 (baseline) | Δ Pass@1 |
    | --- | --- | --- | --- | --- | --- |
    | aime24 | 30 | 64 | 25.0 | 20.0 | +5.0 |
    """
    head = ["benchmark", "items", "n"]
    for k in ks:
        head.append(f"Pass@{k}")
        if baseline is not None:
            head += [f"Pass@{k} (baseline)", f"Δ Pass@{k}"]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    base_benches = (baseline or {}).get("benchmarks", {})
    for name, b in report["benchmarks"].items():
        row = [name, str(b["items"]), str(b["n"])]
        for k in ks:
            ours = b["metrics"].get(f"pass@{k}")
            row.append(_pct(ours))
            if baseline is not None:
                theirs = base_benches.get(name, {}).get("metrics", {}).get(f"pass@{k}")
                row.append(_pct(theirs))
                row.append("–" if ours is None or theirs is None else f"{100 * (ours - theirs):+.1f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def curve_svg(name: str, curve: list[float], baseline: list[float] | None = None, w: int = 480, h: int = 300) -> str:
    """A Pass@k curve (k = 1..n, log-scaled k axis) as a standalone SVG; the baseline dashed if given.

    >>> svg = curve_svg("aime24", [0.2, 0.3, 0.35])
    >>> svg.startswith("<svg") and svg.count("<polyline") == 1
    True
    """
    import math

    left, right, top, bottom = 50, 20, 30, 40
    n = max(len(curve), len(baseline or []))
    span = math.log(n) if n > 1 else 1.0

    def point(k: int, y: float) -> str:
        x = left + (w - left - right) * (math.log(k) / span if n > 1 else 0.5)
        return f"{x:.1f},{top + (h - top - bottom) * (1 - y):.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
        f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="13">{html.escape(name)}: Pass@k</text>',
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="black"/>',
    ]
    for y in (0, 0.25, 0.5, 0.75, 1.0):
        yy = top + (h - top - bottom) * (1 - y)
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{100 * y:.0f}%</text>')
    ticks = sorted({1, n} | {2**i for i in range(1, 12) if 2**i < n})
    for k in ticks:
        x = point(k, 0).split(",")[0]
        parts.append(f'<text x="{x}" y="{h - bottom + 15}" text-anchor="middle">{k}</text>')
    parts.append(f'<text x="{w / 2}" y="{h - 8}" text-anchor="middle">k (samples)</text>')
    series = [(curve, "#1f77b4", "")] + ([(baseline, "#888888", ' stroke-dasharray="5,4"')] if baseline else [])
    for values, colour, dash in series:
        pts = " ".join(point(k, v) for k, v in enumerate(values, start=1))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{pts}"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
