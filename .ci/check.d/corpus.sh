#!/usr/bin/env bash
# The factory's corpus is read by the real tools: local-sandbox factory runs
# on the airgate-mini instances with a solver, a failer and a cheater
# (--keep-rejected), then pyarrow.parquet.read_table, pandas.read_parquet and
# datasets on both splits, datasets.load_dataset(folder) on the Hugging Face
# export (both configs from the card), datasets.load_dataset("json") on the
# SFT export, `corpus select`, and the corpus report in headless Chromium.
# Columns and types are asserted against docs/design.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x target/debug/airgate ] || cargo build --quiet --bin airgate
airgate="$PWD/target/debug/airgate"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

bash tests/fixtures/docker_mini/build.sh --repo "$work/repos/airgate__mini" >/dev/null
"$airgate" factory run --sandbox local --repos "$work/repos" \
  --dataset datasets/airgate-mini.jsonl \
  --teacher "script:tests/fixtures/factory_teachers/solve.jsonl" \
  --out "$work/corpus" --workers 2 --flush-rows 2 --keep-rejected --json
for t in wrong cheat; do
  "$airgate" factory run --sandbox local --repos "$work/repos" \
    --dataset datasets/airgate-mini.jsonl --instance-ids airgate__mini-1 \
    --teacher "script:tests/fixtures/factory_teachers/$t.jsonl" \
    --out "$work/corpus" --keep-rejected --json
done
"$airgate" corpus verify "$work/corpus"
"$airgate" corpus stats "$work/corpus"
"$airgate" corpus export "$work/corpus" --format sft-openai --out "$work/sft.jsonl"
"$airgate" corpus export "$work/corpus" --format sharegpt --out "$work/sharegpt.jsonl"
"$airgate" corpus export "$work/corpus" --format sft-openai --split rejected --out "$work/rejected.jsonl"
"$airgate" corpus export "$work/corpus" --format parquet --out "$work/hf"
"$airgate" corpus select "$work/corpus" --out "$work/selected" --no-flags --one-per-instance --per-repo-cap 2 --seed 1
"$airgate" corpus verify "$work/selected"
"$airgate" report "$work/corpus" --out "$work/corpus-report.html"

python3 - "$work" <<'PY'
import glob, json, sys
import pyarrow as pa
import pyarrow.parquet as pq
import pandas as pd
import datasets

work = sys.argv[1]
s, i32, i64, f64 = pa.string(), pa.int32(), pa.int64(), pa.float64()
want = {
    "trajectory_id": s, "instance_id": s, "dataset": s, "repo": s, "base_commit": s, "model": s,
    "resolved": pa.bool_(), "attempts": i32, "steps": i32, "prompt_tokens": i64,
    "completion_tokens": i64, "wall_s": f64, "patch": s, "patch_sha256": s, "patch_norm_sha256": s, "messages": s,
    "tools": s, "provenance": s, "license": s, "created_at": pa.timestamp("us", tz="UTC"),
    "engine_version": s, "sample": i32, "verified_by": s, "cost_usd": f64,
    "image_digest": s, "dataset_sha256": s, "engine_commit": s,
    "teacher_spec": s, "model_id": s, "sampling": s, "system_prompt_sha256": s,
    "tools_sha256": s, "sandbox": s, "verifier_mode": s, "verify_targets_passed": i32,
    "verify_targets_total": i32, "verify_baseline_kept": i32, "verify_baseline_total": i32,
    "verify_runs": i32, "flags": pa.list_(pa.string()), "provenance_sha256": s,
}
def table(pattern):
    files = sorted(glob.glob(pattern))
    assert files, f"no segments: {pattern}"
    return files, pa.concat_tables([pq.read_table(f) for f in files])

files, verified = table(f"{work}/corpus/part-*.parquet")
rfiles, rejected = table(f"{work}/corpus/rejected/part-*.parquet")
for t, extra in [(verified, {}), (rejected, {"reason": s})]:
    cols = dict(want, **extra)
    assert t.schema.names == list(cols), (t.schema.names, list(cols))
    for name, ty in cols.items():
        got = t.schema.field(name).type
        assert got == ty, f"{name}: {got} != {ty}"
# airgate__noop-1 is a broken instance (its empty patch resolves): 3 rows.
assert verified.num_rows == 3, verified.num_rows
assert rejected.num_rows == 2, rejected.num_rows
manifest = json.load(open(f"{work}/corpus/manifest.json"))
assert manifest["rows"] == verified.num_rows and manifest["split"] == "verified"
assert json.load(open(f"{work}/corpus/rejected/manifest.json"))["split"] == "rejected"

import hashlib
df = pd.concat([pd.read_parquet(f) for f in files])
assert len(df) == 3 and set(df["provenance"]) == {"public"} and df["resolved"].all()
assert str(df["created_at"].dtype) in ("datetime64[us, UTC]", "datetime64[ns, UTC]"), df["created_at"].dtype
assert df["attempts"].dtype == "int32" and df["prompt_tokens"].dtype == "int64"
# patch_sha256 is the sha256 of the patch as stored
assert all(hashlib.sha256(p.encode()).hexdigest() == h for p, h in zip(df["patch"], df["patch_sha256"]))
assert all(len(f) == 0 for f in df["flags"])
assert set(df["sandbox"]) == {"local"} and set(df["verifier_mode"]) == {"strict"}
ds_sha = hashlib.sha256(open("datasets/airgate-mini.jsonl", "rb").read()).hexdigest()
assert set(df["dataset_sha256"]) == {ds_sha}
for m in df["messages"]:
    msgs = json.loads(m)
    assert msgs[0]["role"] == "system"
    ids = {c["id"] for x in msgs for c in x.get("tool_calls", [])}
    assert ids and all(x["tool_call_id"] in ids for x in msgs if x["role"] == "tool")
rdf = pd.concat([pd.read_parquet(f) for f in rfiles])
assert sorted(rdf["reason"]) == ["flagged", "unresolved"], list(rdf["reason"])
assert not rdf["resolved"].any()
flagged = rdf[rdf["reason"] == "flagged"].iloc[0]
assert any("exits_process" in f for f in flagged["flags"]), flagged["flags"]
assert not set(rdf["trajectory_id"]) & set(df["trajectory_id"])

ds = datasets.load_dataset("parquet", data_files=files, split="train")
assert ds.num_rows == 3
assert ds.features["created_at"].dtype.startswith("timestamp[us"), ds.features["created_at"]
assert ds.features["attempts"].dtype == "int32" and ds.features["wall_s"].dtype == "float64"
rds = datasets.load_dataset("parquet", data_files=rfiles, split="train")
assert rds.num_rows == 2 and "reason" in rds.column_names

# The Hugging Face folder: both configs come from the card.
hf = f"{work}/hf"
names = datasets.get_dataset_config_names(hf)
assert set(names) == {"verified", "rejected"}, names
v = datasets.load_dataset(hf)
assert list(v) == ["train"] and v["train"].num_rows == 3, v
r = datasets.load_dataset(hf, "rejected")
assert r["train"].num_rows == 2 and "reason" in r["train"].column_names
card = open(f"{hf}/README.md").read()
assert card.startswith("---\nlicense:\n") and "size_categories:\n- n<1K" in card
allow = hashlib.sha256(open("configs/public_sources.toml", "rb").read()).hexdigest()
assert allow in card

sft = datasets.load_dataset("json", data_files=f"{work}/sft.jsonl", split="train")
assert sft.num_rows == 3 and set(sft.column_names) == {"messages", "tools"}, sft.column_names
assert sft[0]["messages"][0]["role"] == "system"
sg = datasets.load_dataset("json", data_files=f"{work}/sharegpt.jsonl", split="train")
assert sg.num_rows == 3 and "conversations" in sg.column_names
assert sum(1 for _ in open(f"{work}/rejected.jsonl")) == 2

sel = json.load(open(f"{work}/selected/manifest.json"))
assert sel["selection"]["rule"]["seed"] == 1 and sel["selection"]["rule"]["one_per_instance"]
assert sel["rows"] == 2, sel["rows"]  # one repo, capped at 2
print(f"corpus: pyarrow, pandas and datasets read {verified.num_rows} verified and "
      f"{rejected.num_rows} rejected rows; load_dataset(folder) sees configs {sorted(names)}; "
      f"SFT export loads; select recorded its rule")
PY
CHARTS="chart-repos chart-steps chart-tokens chart-wall chart-solve-rate chart-flags chart-reasons" \
  scripts/check-report.sh "$work/corpus-report.html"
