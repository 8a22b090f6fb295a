"""The session's trace file and the Log's index of it: the child writes the raw records in blocks
(:class:`FileTrace`), the index reads back exactly the lines ``run --trace`` would write, grows with
the file by whole blocks, keeps a filter's lines in sparse entries (memory does not grow with the
run), and skips what does not decode."""

from __future__ import annotations

import os

from explorer.session.tracefile import FileTrace
from explorer.tracelines import BLOCK_HEADER, trace_line
from explorer.tui.widgets import trace_view
from explorer.tui.widgets.trace_view import TraceIndex, matches


def _records(n: int) -> list[tuple[int, str, dict[str, object]]]:
    return [(i * 1000, "free" if i % 3 else "unlink",
             {"cpu": i % 4, "pfn": i, "source": "hot-remove" if i % 7 == 0 else "vmalloc-huge"})
            for i in range(n)]


def _read_all(idx: TraceIndex) -> list[str]:
    return [line for b in range(len(idx.starts)) for line in idx.read_block(b)]


def _trace(tmp_path, records, block_items: int = 100, **kw) -> FileTrace:
    ft = FileTrace(50, str(tmp_path), block_items=block_items, **kw)
    for r in records:
        ft.append(r)
    return ft


def test_the_index_reads_back_every_line_and_grows_with_the_file(tmp_path):
    records = _records(1000)
    lines = [trace_line(r) for r in records]
    ft = _trace(tmp_path, records[:650])  # six blocks of 100 written, 50 records waiting
    assert ft.lines == 600 and os.path.getsize(ft.path) == 0  # still in the write buffer
    first = ft.flush()  # at a snapshot: all of it on disk, the waiting records as a block of their own
    assert first["lines"] == 650 and first["size"] == os.path.getsize(ft.path) and not first["capped"]
    for r in records[650:]:
        ft.append(r)
    assert list(ft) == records[-50:]  # the tail the snapshots read
    idx = TraceIndex(ft.path, ())
    assert idx.extend(first["size"]) and idx.count == idx.total == 650 and idx.scanned == first["size"]
    second = ft.flush()
    ft.close(remove=False)
    assert idx.extend(second["size"]) and idx.count == 1000 and second["lines"] == 1000
    # entries of whole blocks, closed once they hold 256 lines (the flush made a block of 50)
    assert list(idx.firsts) == [0, 300, 600, 950] and list(idx.ends) == [idx.starts[i + 1] for i in range(3)]
    assert _read_all(idx) == lines
    assert idx.widest == max(len(ln) for ln in lines) and idx.damaged == 0


def test_a_filter_keeps_its_lines_in_sparse_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_view, "BLOCK_BYTES", 4096)
    records = _records(3000)
    ft = _trace(tmp_path, records, block_items=50)
    size = ft.flush()["size"]
    words = ("hot-remove", "-unlink")
    idx = TraceIndex(ft.path, words)
    assert idx.extend(size)
    want = [trace_line(r) for r in records if matches(trace_line(r), words)]
    assert idx.count == len(want) == 286 and idx.total == 3000
    assert _read_all(idx) == want
    # an entry ends after 4 KiB of file (and a block), however few lines it kept: a read stays
    # small, and so does the index
    block = max(e - s for s, e in zip(idx.starts, idx.ends, strict=False))
    assert len(idx.starts) > 1 and block <= 4096 + 2000
    assert len(idx.starts) <= size // 4096 + 1
    assert idx.block_of(0) == 0 and idx.block_of(idx.count - 1) == len(idx.starts) - 1


def test_a_cancelled_scan_stops_and_a_gone_file_is_no_error(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_view, "CHUNK", 1000)  # a progress report every block or so
    ft = _trace(tmp_path, _records(500), block_items=20)
    size = ft.flush()["size"]
    idx = TraceIndex(ft.path, ())
    calls = []
    assert not idx.extend(size, cancelled=lambda: len(calls) > 0, progress=lambda: calls.append(1))
    assert 0 < idx.scanned < size and idx.count < 500
    ft.close()  # the run was reset: its file went
    assert not TraceIndex(ft.path, ()).extend(10)
    assert idx.read_block(0) == []


def test_printed_lines_keep_their_place_and_odd_fields_their_line(tmp_path):
    class Page:
        def __str__(self) -> str:
            return "page#7"

    records = _records(10)
    odd = (10_000, "free", {"cpu": 1, "pfn": Page(), "source": "script"})  # marshal cannot hold it
    ft = _trace(tmp_path, records[:5], block_items=4)
    ft.write("[stdout] freeing\n7")  # a plugin's print(), with a newline in it
    ft.append(odd)
    for r in records[5:]:
        ft.append(r)
    idx = TraceIndex(ft.path, ())
    assert idx.extend(ft.flush()["size"])
    assert _read_all(idx) == [*(trace_line(r) for r in records[:5]), "[stdout] freeing 7",
                              "[001]     0.000010: free: pfn=page#7 source=script",
                              *(trace_line(r) for r in records[5:])]
    assert ft.lines == 12


def test_the_file_stops_at_its_cap_on_a_block(tmp_path):
    records = _records(1000)
    probe = _trace(tmp_path, records[:100])
    block = probe.size
    probe.close()
    ft = _trace(tmp_path, records, limit=3 * block + block // 2)  # room for three blocks and a half
    report = ft.flush()
    assert report["capped"] and report["lines"] == 300 and report["capped_at_ns"] == records[300][0]
    assert report["size"] == os.path.getsize(ft.path) <= 3 * block + block // 2
    ft.append(records[0])  # more after the cap: the tail takes it, the file does not
    assert ft.flush()["size"] == report["size"] and ft[-1] == records[0]
    idx = TraceIndex(ft.path, ())
    assert idx.extend(report["size"]) and _read_all(idx) == [trace_line(r) for r in records[:300]]


def test_a_block_that_does_not_decode_is_skipped(tmp_path):
    records = _records(300)
    ft = _trace(tmp_path, records)
    size = ft.flush()["size"]
    ft.close(remove=False)
    with open(ft.path, "r+b") as f:  # the second block's payload spoilt, its header intact
        f.seek(0)
        length, _ = BLOCK_HEADER.unpack(f.read(BLOCK_HEADER.size))
        f.seek(2 * BLOCK_HEADER.size + length + 1)
        f.write(b"\xff" * 40)
    idx = TraceIndex(ft.path, ())
    assert idx.extend(size) and idx.damaged == 1 and idx.scanned == size
    assert _read_all(idx) == [trace_line(r) for r in records[:100] + records[200:]]
    # a file shorter than the snapshot said (cut inside its last block): what is whole is read
    os.truncate(ft.path, size - 10)
    idx = TraceIndex(ft.path, ())
    assert idx.extend(size) and idx.scanned == size and idx.damaged == 2
    assert _read_all(idx) == [trace_line(r) for r in records[:100]]


def test_the_reader_formats_the_lines_trace_line_does():
    """block_lines (trace_line inlined, the prefix kept while the clock and cpu are the same
    objects) gives trace_line's lines, for the odd records test_determinism checks and a run's."""
    import marshal

    from explorer.plugins import load_registry
    from explorer.sim.build import build_simulation
    from explorer.tracelines import block_lines
    from tests.conftest import make_config

    t = 1_234_567_891_500
    odd = [(0, "flush_start", {"cpu": 3, "mms": 16, "source": "kworker"}),
           (t, "free", {"pfn": 7, "source": "script#1", "age_ns": 0, "by": "caller"}),
           (t, "free", {"cpu": 0, "pfn": 8}),  # the same clock, the cpu given: the same prefix
           (t, "free", {"cpu": True, "pfn": 9}),  # equal to 1 but another object: its own prefix
           (999_999_999_999_500, "violation", {"kind": "use_after_free", "ok": True, "x": 1.5, "none": None,
                                               "cpu": 127}),
           (5, "odd%event", {"cpu": 1, "a%": "100%", "weird key": "v", "s": "%(cpu)s"}),
           (5, "multi", {"cpu": 1, "text": "a\nb"}),
           (7, "empty", {})]
    assert block_lines([*odd, "[stdout] x\ny"]) == [trace_line(r).replace("\n", " ") for r in odd] + ["[stdout] x y"]
    reg = load_registry([], entry_points=False)
    sim = build_simulation(make_config(reg, "run.duration=20ms", scenario="before-fix"), reg)
    sim.enable_trace(100_000)
    sim.run()
    records = list(sim.kernel.tracer)
    assert len(records) > 2000
    assert block_lines(marshal.loads(marshal.dumps(records))) == sim.trace_lines()


def test_a_session_removes_the_trace_folders_of_programs_that_are_gone(tmp_path, monkeypatch):
    import tempfile

    from explorer.session.tracefile import remove_stale_trace_dirs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = tmp_path / "pgtable-explorer-trace-4194305-abc"  # above any pid_max: no such process
    running = tmp_path / f"pgtable-explorer-trace-{os.getpid()}-abc"
    other = tmp_path / "pgtable-explorer-trace-notapid"
    for d in (gone, running, other):
        d.mkdir()
        (d / "run-x.trace").write_bytes(b"")
    remove_stale_trace_dirs()
    assert not gone.exists() and running.exists() and other.exists()
