"""The results files of a sweep: ``FILE.csv`` and ``FILE.jsonl`` beside it, one row per point.

A row is ``point, point_id, status, error, attempts``, then the swept keys (``strategy.params.batch``),
``seed``, then every metric flattened (``flushes``, ``queue.peak``, ``latency_ns.p99``,
``iommus[0].hits``; see :func:`explorer.documents.flatten_metrics`). A failed point has its
``error`` and no metrics. The JSON Lines file holds the same rows with their types, plus each
point's whole ``config`` (and a failed point's ``traceback`` and ``failure``, its kind in
:mod:`explorer.failures`: ``user``, ``plugin``, ``timeout``, ``process``, ``simulator``): any point
can be run again from it.

Rows are appended (and flushed) as points finish, so an interrupted or crashed sweep keeps every
finished point; when the sweep ends, both files are rewritten in point order, so two sweeps of the
same points give identical files whatever order their points finished in. ``--resume`` reads the
JSON Lines file (else the CSV) and skips the points already finished there; before anything is
written, each file there must be a results file (a torn last line aside), else :class:`NotResults`
names the file and what is wrong. The folder of the files must exist: it is never created.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from explorer.atomic import atomic_open
from explorer.sweep.points import Point, SweepError, is_param_column

HEAD = ("point", "point_id", "status", "error", "attempts")
#: Keys of a JSON Lines record that are not CSV columns.
JSON_ONLY = ("traceback", "failure", "config")


def jsonl_path(path: str | os.PathLike[str]) -> Path:
    """``results.csv`` -> ``results.jsonl``."""
    p = Path(path)
    return p.with_suffix(".jsonl") if p.suffix.lower() == ".csv" else p.with_name(p.name + ".jsonl")


def summary_path(path: str | os.PathLike[str]) -> Path:
    """``results.csv`` -> ``results.summary.csv``."""
    p = Path(path)
    stem = p.stem if p.suffix.lower() == ".csv" else p.name
    return p.with_name(stem + ".summary.csv")


def make_record(point: Point, body: Mapping[str, Any]) -> dict[str, Any]:
    """A results record for ``point`` from its *body* (``status``, ``error``, ``attempts``,
    ``metrics`` flattened, ``traceback``)."""
    rec: dict[str, Any] = {
        "point": point.index,
        "point_id": point.id,
        "status": body["status"],
        "error": body.get("error"),
        "attempts": body.get("attempts", 1),
    }
    rec.update(point.params)
    rec["seed"] = point.seed
    rec.update(body.get("metrics") or {})
    if body.get("traceback"):
        rec["traceback"] = body["traceback"]
    if body.get("failure"):
        rec["failure"] = body["failure"]
    rec["config"] = point.config
    return rec


def body_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`make_record`: what a record says about its run, not about its point."""
    metrics = {
        k: v for k, v in record.items()
        if k not in HEAD and k not in JSON_ONLY and k != "seed" and not is_param_column(k)
    }
    return {
        "status": record.get("status"),
        "error": record.get("error"),
        "attempts": record.get("attempts", 1),
        "metrics": metrics,
        "traceback": record.get("traceback"),
        "failure": record.get("failure"),
    }


# --------------------------------------------------------------------------- reading


def _cell_out(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


_INT_RE = re.compile(r"^-?\d+$")


def _cell_in(text: str) -> Any:
    if text == "":
        return None
    if text in ("true", "false", "True", "False"):
        return text in ("true", "True")
    if _INT_RE.match(text):
        return int(text)
    try:
        v = float(text)
    except ValueError:
        return text
    return v if math.isfinite(v) or text.lower() in ("nan", "inf", "-inf") else text


class NotResults(SweepError):
    """A file that is not a sweep's results file: ``--resume`` will not replace it, ``--summary``
    will not read it. ``str()`` says so and what to do; :attr:`problem` says only what is wrong."""

    def __init__(self, path: str | os.PathLike[str], why: str) -> None:
        self.path = Path(path)
        self.problem = f"{path} is not a sweep results file ({why})"
        super().__init__(f"{self.problem}; nothing was written: give another --out, or --overwrite to replace it")


def read_jsonl(path: str | os.PathLike[str], *, strict: bool = False) -> list[dict[str, Any]]:
    """The records of a JSON Lines results file; a torn last line (a crash mid-write) is skipped.

    ``strict``: raise :class:`SweepError` (naming the file and the line) unless every other line is
    a JSON object with a ``point_id``, and the file is UTF-8 text, instead of skipping what is not."""
    out: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]
    except UnicodeDecodeError:
        if not strict:
            raise
        raise NotResults(path, "it is not UTF-8 text") from None
    for i, (n, line) in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if strict and not (i == len(lines) - 1 and line.startswith("{")):  # a torn last record is fine
                raise NotResults(path, f"line {n} is not JSON: {line[:40]!r}") from None
            continue
        if isinstance(rec, dict) and (not strict or "point_id" in rec):
            out.append(rec)
        elif strict:
            raise NotResults(path, f"line {n} is not a results record (a JSON object with a point_id)")
    return out


def read_csv(path: str | os.PathLike[str], *, strict: bool = False) -> list[dict[str, Any]]:
    """The rows of a CSV results file, with numbers and booleans read back as such; a torn last row
    (a crash mid-write: more or fewer cells than the header) is skipped.

    ``strict``: raise :class:`SweepError` (naming the file and the line) unless the file is empty or
    starts with a results header (``point,point_id,status,...``) and every row but a torn last one
    has a cell per column."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if strict and header is not None and tuple(header[:3]) != HEAD[:3]:
                first = ",".join(header)
                raise NotResults(path, f"its first line {first[:60]!r} is not a results header "
                                         f"{','.join(HEAD[:3])},...")
            cells: list[tuple[int, list[str]]] = []
            for row in reader:
                if row:  # not a blank line
                    cells.append((reader.line_num, row))
    except UnicodeDecodeError:
        if not strict:
            raise
        raise NotResults(path, "it is not UTF-8 text") from None
    except csv.Error as exc:
        if not strict:
            raise
        raise NotResults(path, f"it cannot be read as CSV: {exc}") from None
    if header is None:
        return []
    rows = []
    for i, (n, row) in enumerate(cells):
        if len(row) != len(header):
            if i == len(cells) - 1:  # a torn last row
                continue
            if strict:
                raise NotResults(path, f"line {n} has {len(row)} cells where the header has {len(header)}")
            if len(row) > len(header):
                continue
        rows.append({k: _cell_in(row[j]) if j < len(row) else None for j, k in enumerate(header)})
    return rows


def check_folder(path: str | os.PathLike[str]) -> None:
    """Raise :class:`SweepError` unless the folder that is to hold ``path`` exists (it is never
    created: a mistyped folder is a mistake to report, not to make)."""
    folder = Path(path).parent
    if folder.is_dir():
        return
    nearest = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if nearest is not None and not nearest.is_dir():
        raise SweepError(f"cannot write {path}: {nearest} is not a folder")
    raise SweepError(f"cannot write {path}: the folder {folder} does not exist (create it first)")


def read_results(path: str | os.PathLike[str], *, strict: bool = False) -> list[dict[str, Any]]:
    """The records of a sweep's results: the JSON Lines file beside ``path`` when there is one
    (typed, with configs), else the CSV. When a point appears twice (a failed point run again),
    the last row wins. ``strict``: a file that is not a results file raises :class:`SweepError`
    (see :func:`read_csv`, :func:`read_jsonl`)."""
    p = Path(path)
    j = p if p.suffix.lower() == ".jsonl" else jsonl_path(p)
    if j.exists():
        records = read_jsonl(j, strict=strict)
    elif p.exists():
        records = read_csv(p, strict=strict)
    else:
        raise FileNotFoundError(f"no results file {p} (nor {j})")
    return latest(records)


def latest(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Keep the last record of each ``point_id``, in order of first appearance."""
    by_id: dict[Any, dict[str, Any]] = {}
    order: list[Any] = []
    for i, r in enumerate(records):
        key = r.get("point_id") or ("#", i)
        if key not in by_id:
            order.append(key)
        by_id[key] = dict(r)
    return [by_id[k] for k in order]


# --------------------------------------------------------------------------- writing


def _atomic_write_text(path: Path, write: Any) -> None:
    with atomic_open(path, newline="") as f:
        write(f)


class ResultsFiles:
    """The CSV and JSON Lines files of one sweep, appended to as points finish."""

    def __init__(self, path: str | os.PathLike[str], *, resume: bool = False, overwrite: bool = False) -> None:
        self.csv_path = Path(path)
        self.jsonl_path = jsonl_path(self.csv_path)
        self.resume = resume
        self.overwrite = overwrite
        self.records: list[dict[str, Any]] = []  # everything in the files, in file order
        self.columns: list[str] = []
        self._csv: IO[str] | None = None
        self._jsonl: IO[str] | None = None
        self.opened = False
        self.existed = False

    # -- opening ---------------------------------------------------------------------------------
    def check(self) -> list[Path]:
        """Raise :class:`SweepError` if results exist and neither ``resume`` nor ``overwrite`` was
        asked for (existing results are never silently replaced); return the files that exist."""
        exists = [p for p in (self.csv_path, self.jsonl_path) if p.exists()]
        if exists and not (self.resume or self.overwrite):
            raise SweepError(
                f"{exists[0]} already exists: pass --resume to continue that sweep, --overwrite to replace "
                "it, or another --out"
            )
        return exists

    def check_all(self) -> list[dict[str, Any]]:
        """Everything :meth:`open` will check, without writing anything: the folder exists,
        :meth:`check`, and with ``resume`` that each existing file is a results file (else a
        :class:`SweepError` naming it and what is wrong). Returns the records already there."""
        check_folder(self.csv_path)
        for p in (self.csv_path, self.jsonl_path):
            if p.is_dir():
                raise SweepError(f"{p} is a folder, not a results file: give --out a file name")
        exists = self.check()
        if not (self.resume and exists):
            return []
        records = read_jsonl(self.jsonl_path, strict=True) if self.jsonl_path in exists else []
        rows = read_csv(self.csv_path, strict=True) if self.csv_path in exists else []
        return records if self.jsonl_path in exists else rows

    def open(self) -> list[dict[str, Any]]:
        """Open for appending; return the records already there (``--resume``), else ``[]``.
        Raises :class:`SweepError` (and writes nothing) as :meth:`check_all` does."""
        previous = self.check_all()
        self.existed = self.csv_path.exists() or self.jsonl_path.exists()
        self.records = list(previous)
        self.columns = []
        for r in self.records:
            self._add_columns(r)
        # Start both files afresh from what was read (this also drops a torn last line).
        self._rewrite()
        self.opened = True
        return previous

    def _add_columns(self, rec: Mapping[str, Any]) -> bool:
        new = False
        known = set(self.columns)
        for k in rec:
            if k not in known and k not in JSON_ONLY:
                self.columns.append(k)
                known.add(k)
                new = True
        return new

    def _reopen(self) -> None:
        self._close_handles()
        self._csv = open(self.csv_path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        self._jsonl = open(self.jsonl_path, "a", encoding="utf-8")  # noqa: SIM115

    def _rewrite(self) -> None:
        self._close_handles()
        cols = list(self.columns)
        records = list(self.records)

        def write_csv(f: IO[str]) -> None:
            w = csv.writer(f, lineterminator="\n")
            if cols:
                w.writerow(cols)
            for r in records:
                w.writerow([_cell_out(r.get(c)) for c in cols])

        def write_jsonl(f: IO[str]) -> None:
            for r in records:
                f.write(json.dumps(r) + "\n")

        _atomic_write_text(self.csv_path, write_csv)
        _atomic_write_text(self.jsonl_path, write_jsonl)
        self._reopen()

    # -- appending -------------------------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> None:
        """Add one finished point to both files, flushed at once."""
        assert self.opened, "open() first"
        self.records.append(record)
        if self._add_columns(record) or self._csv is None:
            self._rewrite()  # the first row, or a column no earlier row had: the CSV needs a new header
            return
        assert self._csv is not None and self._jsonl is not None
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        csv.writer(self._csv, lineterminator="\n").writerow([_cell_out(record.get(c)) for c in self.columns])
        self._csv.flush()

    def finalize(self, ordered: Sequence[dict[str, Any]]) -> None:
        """Rewrite both files with exactly ``ordered`` (point order), columns in first-seen order."""
        if not self.opened:
            return
        if not ordered and not self.existed:  # nothing ran (e.g. the cluster was unreachable)
            self._close_handles()
            for p in (self.csv_path, self.jsonl_path):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            self.opened = False
            return
        self.records = list(ordered)
        self.columns = []
        for r in self.records:
            self._add_columns(r)
        self._rewrite()

    def _close_handles(self) -> None:
        for f in (self._csv, self._jsonl):
            if f is not None:
                with contextlib.suppress(Exception):
                    f.close()
        self._csv = self._jsonl = None

    def close(self) -> None:
        for f in (self._csv, self._jsonl):
            if f is not None:
                with contextlib.suppress(Exception):
                    f.flush()
                    os.fsync(f.fileno())
        self._close_handles()
