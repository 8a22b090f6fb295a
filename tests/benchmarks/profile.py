"""Where the time goes: profile one run of the default scenario (or of ``section.key=value`` overrides).

    python -m tests.benchmarks.profile [--pyinstrument] [--ms 1000] [kernel.background_alloc_rate=0 ...]

cProfile (the default) counts calls exactly but inflates the cost of small functions;
pyinstrument (``pip install pyinstrument``) samples the stack and shows the call tree with honest
proportions. Overrides use the ``section__key`` form of ``tests.benchmarks.cases.config`` written
with dots: ``iommu.walk_rate=0``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from tests.benchmarks.cases import config, registry


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.profile")
    ap.add_argument("--pyinstrument", action="store_true")
    ap.add_argument("--ms", type=float, default=1000, help="simulated milliseconds (default 1000)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("overrides", nargs="*", help="section.key=value (numbers only)")
    args = ap.parse_args()
    kw = {}
    for o in args.overrides:
        key, _, value = o.partition("=")
        kw[key.replace(".", "__")] = float(value) if "." in value or "e" in value else int(value)
    from explorer.sim.build import Simulation

    sim = Simulation(config(args.ms, 1, **kw), registry())
    t = time.perf_counter()
    if args.pyinstrument:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0005)
        prof.start()
        m = sim.run()
        prof.stop()
        print(prof.output_text(unicode=False, color=False))
    else:
        pr = cProfile.Profile()
        m = pr.runcall(sim.run)
        pstats.Stats(pr).sort_stats("tottime").print_stats(args.top)
    took = time.perf_counter() - t
    print(f"{m['events']:,} events in {took:.2f} s under the profiler")


if __name__ == "__main__":
    main()
