"""The documents the explorer writes as JSON: a run, a compare, a scenario and its checks; and a
run's metrics as flat rows (:func:`flatten_metrics`: a sweep's results columns, the TUI's Metrics
tab and its CSV export).

``pgtable-explorer run|compare --format json`` and the TUI's exports build them here, so an export
from either face is the same text for the same run (``dumps_json``) and can be diffed or fed to jq.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from explorer.api import Scenario
    from explorer.plugins import Registry


def dumps_json(obj: Any) -> str:
    """JSON text in the form ``pgtable-explorer ... --format json`` writes: keys sorted, indent 2,
    non-ASCII kept; so an export from a face can be diffed against the CLI's output."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


#: Bulky metrics that are not flattened into rows: time series and violation examples.
NOT_FLATTENED = ("series", "examples")


def flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics as one level of dotted names, in the metrics' order: ``queue.peak``,
    ``iommus[0].hits``, ``violations.use_after_free.total``. Nested tables are joined with dots,
    lists of tables indexed; a list of plain values is one value, as JSON text (``"[1, 2]"``), so
    the names (a sweep's results columns) do not depend on the data. :data:`NOT_FLATTENED` are
    left out."""
    out: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, (list, tuple)):
            if value and all(isinstance(v, Mapping) for v in value):
                for i, v in enumerate(value):
                    walk(v, f"{key}[{i}]")
            else:
                out[key] = json.dumps(list(value))
        else:
            out[key] = value

    for k, v in metrics.items():
        if k not in NOT_FLATTENED:
            walk(v, k)
    return out


def metrics_csv(metrics: Mapping[str, Any]) -> str:
    """The flattened metrics (:func:`flatten_metrics`) as CSV text with a ``metric,value`` header."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["metric", "value"])
    for key, value in flatten_metrics(metrics).items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        w.writerow([key, value])
    return buf.getvalue()


def at_path(doc: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (``queue.peak``, ``kernel.cpus``) of nested mappings, or None."""
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def dig(metrics: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted metric path (``violations.use_after_free`` gives its ``total``)."""
    node = at_path(metrics, path)
    if isinstance(node, Mapping) and "total" in node:
        return node["total"]
    return node


#: the comparisons an ``expect`` entry may make against another metric (``"> flushes"``)
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "==": lambda a, b: a == b,
    "<": lambda a, b: a < b, ">": lambda a, b: a > b,
}


def expectation_holds(want: str, value: Any, metrics: Mapping[str, Any]) -> bool | None:
    """Whether ``value`` meets ``want``: ``zero``, ``nonzero``, or ``OP other`` (OP one of
    ``< <= > >= ==``, the other side a number or a metric path). None when either side is not a
    number."""
    if not isinstance(value, (int, float)):
        return None
    if want == "zero":
        return value == 0
    if want == "nonzero":
        return value > 0
    op, _, other = want.partition(" ")
    if op not in _COMPARE:
        return None
    other = other.strip()
    try:
        rhs: Any = float(other)
    except ValueError:
        rhs = dig(metrics, other)
    return _COMPARE[op](value, rhs) if isinstance(rhs, (int, float)) else None


def check_expectations(scenario: Scenario, metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Check a scenario's ``expect`` (metric path -> ``zero``/``nonzero``/``OP other.path``) and
    ``only_source`` against metrics."""
    checks: list[dict[str, Any]] = []
    for path, want in scenario.expect.items():
        value = dig(metrics, path)
        if value is None and ".by_source." in path:
            value = 0  # a source that never caused one has no entry
        checks.append({"metric": path, "expect": want, "value": value,
                       "ok": expectation_holds(want, value, metrics)})
    if scenario.only_source:
        others = sorted({
            src
            for v in (metrics.get("violations") or {}).values()
            if isinstance(v, Mapping)
            for src, n in (v.get("by_source") or {}).items()
            if n and src != scenario.only_source
        })
        checks.append({"metric": "violations.by_source", "expect": f"only {scenario.only_source}",
                       "value": others, "ok": not others})
    return checks


def scenario_doc(registry: Registry, name: str | None, metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The scenario ``name`` (when the config came from one): its description, what to expect, and
    with ``metrics`` the checks of its expectations against them."""
    if name is None or name not in registry.scenarios:
        return None
    sc = registry.scenarios[name]
    doc: dict[str, Any] = {"name": sc.name, "description": sc.description, "expected": sc.expected}
    if metrics is not None and (sc.expect or sc.only_source):
        doc["checks"] = check_expectations(sc, metrics)
    return doc


def run_document(config: Mapping[str, Any], metrics: Mapping[str, Any], registry: Registry,
                 scenario: str | None = None) -> dict[str, Any]:
    """What ``pgtable-explorer run --format json`` prints for this run: the config in its TOML form
    (``"100ms"``, ``"50000/s"``, as a saved file has it), the metrics, and the scenario the config
    came from (with the checks of its expectations), if any. Write it with :func:`dumps_json`."""
    from explorer.config import to_toml_dict  # not at the top: `--version` and `--help` stay light

    doc: dict[str, Any] = {"config": to_toml_dict(config, registry), "metrics": dict(metrics)}
    sc = scenario_doc(registry, scenario, metrics)
    if sc is not None:
        doc["scenario"] = sc
    return doc


def compare_document(axis: str, columns: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any] | None]],
                     registry: Registry, scenario: str | None = None,
                     errors: Sequence[Mapping[str, Any] | None] = (),
                     finished: Sequence[bool] | None = None) -> dict[str, Any]:
    """What ``pgtable-explorer compare --format json`` prints: the ``axis`` (``strategy``, ``iommu``
    or ``config``) and one column per variant, ``(label, config, metrics)``, with the config in its
    TOML form; the scenario the base config came from, if any (without checks, as the CLI). A variant
    whose run failed (``errors[i]``, :meth:`RunError.as_dict`) gets an ``error`` beside its metrics:
    the CLI stops at the first failure instead.

    Each column with metrics carries ``safe`` (no violation of any kind) and ``unsafe_reasons``
    (``["unflushed_free 518", ...]``). ``workload`` says whether the columns unlinked the same
    tables from each source (``same``; ``unlinked_by_source``: the counts per column where they
    differ): a strategy that blocks its callers can make a source unlink fewer. ``finished`` (the
    TUI's live columns) says which columns ran to the end: the others get ``"finished": false``
    (their verdict and counts are so far) and are left out of ``workload``.
    """
    from explorer.config import to_toml_dict
    from explorer.violations import unsafe_reasons, workload_differences

    cols: list[dict[str, Any]] = []
    for i, (label, config, metrics) in enumerate(columns):
        col: dict[str, Any] = {"label": label, "config": to_toml_dict(config, registry),
                               "metrics": dict(metrics) if metrics is not None else None}
        if metrics is not None:
            reasons = unsafe_reasons(metrics)
            col["safe"] = not reasons
            col["unsafe_reasons"] = reasons
        if finished is not None and not finished[i]:  # a finished column reads as the CLI's
            col["finished"] = False
        if i < len(errors) and errors[i] is not None:
            col["error"] = dict(errors[i] or {})
        cols.append(col)
    done = [c for c in cols if c["metrics"] is not None and c.get("finished", True)]
    diff = workload_differences([c["metrics"] for c in done])
    # the counts in unlinked_by_source are in the order of "compared" (the labels of the columns)
    doc: dict[str, Any] = {"axis": axis, "columns": cols,
                           "workload": {"same": not diff, "compared": [c["label"] for c in done],
                                        "unlinked_by_source": diff}}
    sc = scenario_doc(registry, scenario, None)
    if sc is not None:
        doc["scenario"] = sc
    return doc

