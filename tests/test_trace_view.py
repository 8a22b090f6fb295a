"""The Log's index of the run's trace file: whole lines only, grows with the file, a filter's lines
in sparse blocks (memory does not grow with the run), read back exactly."""

from __future__ import annotations

from explorer.tui.widgets import trace_view
from explorer.tui.widgets.trace_view import TraceIndex, matches


def _lines(n: int) -> list[str]:
    return [f"[00{i % 4}] {i / 1e6:12.6f}: {'free' if i % 3 else 'unlink'}: pfn={i} source="
            f"{'hot-remove' if i % 7 == 0 else 'vmalloc-huge'}" for i in range(n)]


def _read_all(idx: TraceIndex) -> list[str]:
    return [line for b in range(len(idx.starts)) for line in idx.read_block(b)]


def test_the_index_reads_back_every_line_and_grows_with_the_file(tmp_path):
    lines = _lines(1000)
    path = tmp_path / "run.log"
    text = "".join(ln + "\n" for ln in lines)
    path.write_text(text + "[000] partial line with no newl")  # being written: not read yet
    idx = TraceIndex(str(path), ())
    upto = len("".join(ln + "\n" for ln in lines[:600]))
    assert idx.extend(upto) and idx.count == idx.total == 600 and idx.scanned == upto
    assert idx.extend(len(text)) and idx.count == 1000
    assert len(idx.starts) == 4 and list(idx.firsts) == [0, 256, 512, 768]  # blocks of 256 lines
    assert _read_all(idx) == lines
    assert idx.widest == max(len(ln) for ln in lines)


def test_a_filter_keeps_its_lines_in_sparse_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_view, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(trace_view, "CHUNK", 1000)  # many reads, lines cut at chunk edges
    lines = _lines(3000)
    path = tmp_path / "run.log"
    path.write_text("".join(ln + "\n" for ln in lines))
    idx = TraceIndex(str(path), ("hot-remove", "-unlink"))
    assert idx.extend(path.stat().st_size)
    want = [ln for ln in lines if matches(ln, ("hot-remove", "-unlink"))]
    assert idx.count == len(want) == 286 and idx.total == 3000
    assert _read_all(idx) == want
    # a block ends after 4 KiB of file, however few lines it kept: a read stays small, and so
    # does the index (a block per 4 KiB of file at most)
    assert all(e - s <= 4096 + 60 for s, e in zip(idx.starts, idx.ends, strict=False))
    assert len(idx.starts) <= path.stat().st_size // 4096 + 1
    assert idx.block_of(0) == 0 and idx.block_of(idx.count - 1) == len(idx.starts) - 1


def test_a_cancelled_scan_stops_and_a_gone_file_is_no_error(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_view, "CHUNK", 1000)
    path = tmp_path / "run.log"
    path.write_text("".join(ln + "\n" for ln in _lines(500)))
    idx = TraceIndex(str(path), ())
    calls = []
    assert not idx.extend(path.stat().st_size, cancelled=lambda: len(calls) > 0, progress=lambda: calls.append(1))
    assert 0 < idx.scanned < path.stat().st_size and idx.count < 500
    path.unlink()  # the run was reset: its file went
    assert not TraceIndex(str(path), ()).extend(10)
    assert idx.read_block(0) == []


def test_a_session_removes_the_trace_folders_of_programs_that_are_gone(tmp_path, monkeypatch):
    import os
    import tempfile

    from explorer.session.tracefile import remove_stale_trace_dirs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = tmp_path / "pgtable-explorer-trace-4194305-abc"  # above any pid_max: no such process
    running = tmp_path / f"pgtable-explorer-trace-{os.getpid()}-abc"
    other = tmp_path / "pgtable-explorer-trace-notapid"
    for d in (gone, running, other):
        d.mkdir()
        (d / "run-x.log").write_text("[000] 0.000001: free: pfn=1\n")
    remove_stale_trace_dirs()
    assert not gone.exists() and running.exists() and other.exists()
