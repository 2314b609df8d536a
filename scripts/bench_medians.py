"""Print the median time per callback that criterion recorded for each provider (run by `make bench`)."""
import glob
import json
import os

paths = sorted(glob.glob("target/criterion/authenticate+parse+normalise/*/new/estimates.json"))
if not paths:
    raise SystemExit("no criterion results: run `cargo bench -p payhooks --bench ingest` first")
print("median time per callback (authenticate + parse + normalise):")
for path in paths:
    provider = path.split(os.sep)[-3]
    median_ns = json.load(open(path))["median"]["point_estimate"]
    print(f"  {provider:<8} {median_ns / 1000:8.1f} µs")
