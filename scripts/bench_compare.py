"""`make bench-compare`: the criterion bench and the Python twin (scripts/twin/python_twin.py) on the same
fixtures, in one run, side by side: provider, Rust median, Python median, ratio. The machines are shared and
noisy, so the ratio from one run is the figure that counts.

Beside them, the bench's floor (group `floor`: SHA-256 over what the check must hash, and one validate-only
pass over the body) and what a 10x ratio leaves for everything else (the twin's median / 10 - the floor).
"""
import glob
import json
import os
import platform
import re
import subprocess
import sys

TWIN = os.path.join("scripts", "twin", "python_twin.py")  # vendored (scripts/twin/README.md)


def same_bytes_as_the_twin():
    """The bench signs each typical fixture without the white space between its tokens
    (`testing::bench_request`); the twin signs `json.dumps(json.loads(fixture), separators=(",", ":"))`. Refuse
    to compare if a fixture's bytes would differ (a float or an escape the twin writes another way)."""
    sys.path.insert(0, os.path.dirname(TWIN))
    import python_twin  # noqa: E402

    for provider, name in python_twin.TYPICAL:
        raw = open(os.path.join("tests", "fixtures", provider, f"{name}.json"), encoding="utf-8").read()
        compact = re.sub(r'("(?:\\.|[^"\\])*")|[ \t\n\r]+', lambda m: m.group(1) or "", raw)
        twin = json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False)
        if compact != twin:
            raise SystemExit(f"{provider}/{name}: the bench and the twin would not read the same bytes")


def rust_medians():
    """Median µs per provider for the bench groups `authenticate+parse+normalise` and `floor`."""
    subprocess.run(["cargo", "bench", "-p", "payhooks", "--bench", "ingest", "--", "^(authenticate|floor)"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    medians = {}
    for group in ["authenticate+parse+normalise", "floor"]:
        medians[group] = {}
        for path in glob.glob(f"target/criterion/{group}/*/new/estimates.json"):
            provider = path.split(os.sep)[-3]
            medians[group][provider] = json.load(open(path))["median"]["point_estimate"] / 1000
    return medians["authenticate+parse+normalise"], medians["floor"]


def python_medians():
    out = subprocess.run([sys.executable, TWIN, "."], check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.strip()}


def main():
    if not os.path.exists(TWIN):
        raise SystemExit(f"{TWIN} is missing: it is vendored in the repository (scripts/twin/README.md)")
    same_bytes_as_the_twin()
    rust, floor = rust_medians()
    python = python_medians()
    cpu = platform.processor() or platform.machine()
    print(f"authenticate + parse + normalise, median per callback ({os.cpu_count()} cores, {cpu}, {platform.python_version()})")
    print(f"{'provider':<10}{'rust µs':>10}{'python µs':>12}{'ratio':>8}{'floor µs':>10}{'10x leaves':>12}{'rust uses':>11}")
    for provider in ["niobi", "choice", "m2money", "lipia", "muda"]:
        r, p, f = rust.get(provider), python.get(provider), floor.get(provider)
        if r is None or p is None or f is None:
            print(f"{provider:<10}{'-':>10}{'-':>12}{'-':>8}{'-':>10}{'-':>12}{'-':>11}")
            continue
        print(f"{provider:<10}{r:>10.2f}{p:>12.2f}{p / r:>7.1f}x{f:>10.2f}{p / 10 - f:>12.2f}{r - f:>11.2f}")


if __name__ == "__main__":
    main()
