"""``sweep --plot``: metrics against a swept key, one line per value of a second key.

Each marker is the mean over the seeds (and over any other swept key, which the title names), with
its 95% confidence interval as an error bar. A point where any seed recorded a violation (unsafe)
gets a red ✗ over its marker, so an unsafe setting never passes for the cheapest one. Needs
matplotlib, an optional extra: ``pip install 'pgtable-explorer[plot]'``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from explorer.sweep.points import SweepError
from explorer.sweep.results import check_folder
from explorer.sweep.summary import metric_columns, param_columns, stat
from explorer.violations import flat_unsafe_reasons

MATPLOTLIB_MISSING = (
    "matplotlib is not installed. Install the optional extra into this environment:\n"
    "    pip install 'pgtable-explorer[plot]'\n"
    "(or: pip install matplotlib), then plot again."
)


def _sort_key(v: Any) -> tuple[int, Any]:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, v)
    return (1, str(v))


def _duration_scale(values: Sequence[float], metric: str) -> tuple[float, str]:
    """Nanosecond metrics are drawn in the unit that suits their largest value."""
    from explorer.sweep.summary import is_duration_metric

    if not is_duration_metric(metric) or not values:
        return 1.0, ""
    top = max(abs(v) for v in values)
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "us")):
        if top >= scale:
            return scale, unit
    return 1.0, "ns"


def plot_results(
    records: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    x: str,
    out: str | os.PathLike[str],
    hue: str | None = None,
    *,
    logx: bool | None = None,
    title: str | None = None,
    show: Callable[[str, Any], str] | None = None,
) -> list[str]:
    """Draw ``metrics`` (one panel each) against the swept key ``x`` into ``out`` (``.png``,
    ``.svg`` or ``.pdf``). Returns notes worth showing (keys averaged over, points failed).

    ``logx=None`` picks a log axis when every x is positive and they span 100x or more.
    ``show(key, value)`` writes a swept value as a user reads it (``max_delay=200us``, not
    ``200000``) in the legend and on the x ticks.
    """
    shown = show or (lambda _key, v: f"{v:g}" if isinstance(v, float) else str(v))
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise SweepError(MATPLOTLIB_MISSING) from None
    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise SweepError(f"{out}: the plot file must end in .png, .svg or .pdf")
    check_folder(out)
    if not metrics:
        raise SweepError("--plot needs at least one metric")
    keys = param_columns(records)
    available = metric_columns(records)
    for name, role in ((x, "--x"), (hue, "--hue")):
        if name is not None and name not in keys:
            raise SweepError(f"{role} {name}: not a swept key of these results; swept keys: "
                             + (", ".join(keys) or "(none)"))
    for m in metrics:
        if m not in available:
            import difflib

            close = difflib.get_close_matches(m, available, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise SweepError(f"--plot {m}: no such metric in these results{hint}")

    ok = [r for r in records if r.get("status") == "ok"]
    notes = []
    failed = len(records) - len(ok)
    if failed:
        notes.append(f"{failed} failed point(s) left out")
    others = [k for k in keys if k not in (x, hue) and len({str(r.get(k)) for r in ok}) > 1]
    if others:
        notes.append("averaged over " + ", ".join(others))

    hues = sorted({r.get(hue) for r in ok}, key=_sort_key) if hue else [None]
    xs_all: list[Any] = sorted({r.get(x) for r in ok if r.get(x) is not None}, key=_sort_key)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs_all)
    if logx is None:
        logx = bool(numeric and xs_all and min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 100)
    pos = {v: (v if numeric else i) for i, v in enumerate(xs_all)}

    any_unsafe = False
    fig = Figure(figsize=(5.2 * len(metrics), 3.8), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, m in zip(axes, metrics, strict=True):
        scale, unit = _duration_scale([float(r[m]) for r in ok if isinstance(r.get(m), (int, float))], m)
        bad_x: list[Any] = []
        bad_y: list[float] = []
        for h in hues:
            xs, ys, errs = [], [], []
            for v in xs_all:
                here = [r for r in ok if r.get(x) == v and (hue is None or r.get(hue) == h)]
                vals = [float(r[m]) for r in here if isinstance(r.get(m), (int, float))]
                if not vals:
                    continue
                s = stat(vals)
                xs.append(pos[v])
                ys.append(s.mean / scale)
                errs.append((s.ci95 or 0.0) / scale)
                if any(flat_unsafe_reasons(r) for r in here):
                    bad_x.append(pos[v])
                    bad_y.append(s.mean / scale)
            if not xs:
                continue
            label = f"{hue}={shown(hue, h)}" if hue else None
            ax.errorbar(xs, ys, yerr=errs, marker="o", markersize=4, capsize=3, linewidth=1.4, label=label)
        if bad_x:
            any_unsafe = True
            ax.scatter(bad_x, bad_y, marker="x", s=70, linewidths=2, color="red", zorder=5,
                       label="unsafe (a violation)")
        ax.set_xlabel(x)
        ax.set_ylabel(f"{m} ({unit})" if unit else m)
        ax.set_title(m, fontsize=10)
        if logx and numeric:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(xs_all)), [shown(x, v) for v in xs_all])
        elif len(xs_all) <= 12:  # few values: mark exactly those
            ax.set_xticks(xs_all, [shown(x, v) if show else f"{v:g}" for v in xs_all])
            ax.minorticks_off()
        ax.grid(True, alpha=0.3)
        if hue or bad_x:
            ax.legend(fontsize=8)
    seeds = {r.get("seed") for r in ok}
    sup = title or f"mean and 95% CI over {len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
    if others:
        sup += "; averaged over " + ", ".join(others)
    if any_unsafe:
        notes.append("red crosses mark unsafe points (a violation in some seed)")
        sup += "; red ✗ = unsafe"
    fig.suptitle(sup, fontsize=9)
    kwargs: dict[str, Any] = {}
    if out.suffix.lower() == ".svg":
        kwargs["metadata"] = {"Date": None}  # the same results give the same file
    # Written whole or not at all: matplotlib writes in place, so a full disk or Ctrl-C would
    # leave half an image where the old plot was.
    from explorer.atomic import atomic_open

    with matplotlib.rc_context({"svg.hashsalt": "pgtable-explorer"}), atomic_open(out, binary=True) as f:
        fig.savefig(f, format=out.suffix.lower()[1:], **kwargs)
    return notes
