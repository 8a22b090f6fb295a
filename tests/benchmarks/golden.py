"""Record or check the outcome of every case in ``cases.py``: a performance change must not move a bit.

    python -m tests.benchmarks.golden save /tmp/golden.json    # before a change
    python -m tests.benchmarks.golden check /tmp/golden.json   # after it: prints any difference

The golden file is a working aid for one change, never committed: the tests re-derive what they
check (``tests/test_determinism.py``).
"""

from __future__ import annotations

import json
import sys
import time

from tests.benchmarks.cases import canonical, cases, outcome

STEPPED = ("deferred-adversarial-1", "batched-small", "holes", "test-buggy")


def collect() -> dict[str, str]:
    out = {}
    for name, cfg in cases().items():
        out[name] = canonical(outcome(cfg))
        if name in STEPPED:
            out[name + "+stepped"] = canonical(outcome(cfg, stepped=True))
    return out


def _diff(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        res = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                res.append(f"(new key {path}.{k})")
                continue
            res += _diff(a.get(k), b.get(k), f"{path}.{k}")
        return res
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        res = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            res += _diff(x, y, f"{path}[{i}]")
        return res
    return [] if a == b else [f"{path}: {a!r} != {b!r}"[:300]]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("save", "check"):
        print(__doc__)
        return 2
    t0 = time.perf_counter()
    now = collect()
    took = time.perf_counter() - t0
    if argv[0] == "save":
        with open(argv[1], "w") as f:
            json.dump(now, f)
        print(f"saved {len(now)} outcomes in {took:.1f}s")
        return 0
    with open(argv[1]) as f:
        gold = json.load(f)
    bad = 0
    new_keys: set[str] = set()
    for name in sorted(set(gold) | set(now)):
        if gold.get(name) != now.get(name):
            a = json.loads(gold[name]) if name in gold else None
            b = json.loads(now[name]) if name in now else None
            diffs = _diff(a, b)
            new_keys.update(d for d in diffs if d.startswith("(new key"))
            diffs = [d for d in diffs if not d.startswith("(new key")]
            if diffs:
                bad += 1
                print(f"DIFFERS {name}:")
                for line in diffs[:8]:
                    print("   ", line)
    for key in sorted(new_keys)[:10]:
        print("not in the golden file (added since):", key)
    print(f"{len(now) - bad}/{len(now)} identical ({took:.1f}s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
