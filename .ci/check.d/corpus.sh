#!/usr/bin/env bash
# The factory's corpus is read by the real tools: a local-sandbox factory
# run on the airgate-mini instances, then pyarrow.parquet.read_table,
# pandas.read_parquet and datasets.load_dataset("parquet") on the segments,
# and datasets.load_dataset("json") on the SFT export. Columns and types are
# asserted against docs/design.md.
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
  --out "$work/corpus" --workers 2 --flush-rows 2 --json
"$airgate" corpus verify "$work/corpus"
"$airgate" corpus export "$work/corpus" --format sft-openai --out "$work/sft.jsonl"
"$airgate" corpus export "$work/corpus" --format sharegpt --out "$work/sharegpt.jsonl"

python3 - "$work" <<'PY'
import glob, json, sys
import pyarrow as pa
import pyarrow.parquet as pq
import pandas as pd
import datasets

work = sys.argv[1]
files = sorted(glob.glob(f"{work}/corpus/part-*.parquet"))
assert files, "no segments"
want = {
    "trajectory_id": pa.string(), "instance_id": pa.string(), "dataset": pa.string(),
    "repo": pa.string(), "base_commit": pa.string(), "model": pa.string(),
    "resolved": pa.bool_(), "attempts": pa.int32(), "steps": pa.int32(),
    "prompt_tokens": pa.int64(), "completion_tokens": pa.int64(), "wall_s": pa.float64(),
    "patch": pa.string(), "patch_sha256": pa.string(), "messages": pa.string(),
    "tools": pa.string(), "provenance": pa.string(), "license": pa.string(),
    "created_at": pa.timestamp("us", tz="UTC"), "engine_version": pa.string(),
}
table = pa.concat_tables([pq.read_table(f) for f in files])
for name, ty in want.items():
    got = table.schema.field(name).type
    assert got == ty, f"{name}: {got} != {ty}"
# airgate__noop-1 is a broken instance (its empty patch resolves): 3 rows.
assert table.num_rows == 3, table.num_rows
manifest = json.load(open(f"{work}/corpus/manifest.json"))
assert manifest["rows"] == table.num_rows

df = pd.concat([pd.read_parquet(f) for f in files])
assert len(df) == 3
assert set(df["provenance"]) == {"public"}
assert df["resolved"].all()
assert str(df["created_at"].dtype) in ("datetime64[us, UTC]", "datetime64[ns, UTC]"), df["created_at"].dtype
assert df["attempts"].dtype == "int32" and df["prompt_tokens"].dtype == "int64"
for m in df["messages"]:
    msgs = json.loads(m)
    assert msgs[0]["role"] == "system"
    ids = {c["id"] for x in msgs for c in x.get("tool_calls", [])}
    assert ids and all(x["tool_call_id"] in ids for x in msgs if x["role"] == "tool")

ds = datasets.load_dataset("parquet", data_files=files, split="train")
assert ds.num_rows == 3
assert ds.features["created_at"].dtype.startswith("timestamp[us"), ds.features["created_at"]
assert ds.features["attempts"].dtype == "int32" and ds.features["wall_s"].dtype == "float64"

sft = datasets.load_dataset("json", data_files=f"{work}/sft.jsonl", split="train")
assert sft.num_rows == 3 and set(sft.column_names) == {"messages", "tools"}, sft.column_names
assert sft[0]["messages"][0]["role"] == "system"
sg = datasets.load_dataset("json", data_files=f"{work}/sharegpt.jsonl", split="train")
assert sg.num_rows == 3 and "conversations" in sg.column_names
print(f"corpus: pyarrow, pandas and datasets read {table.num_rows} rows from {len(files)} segments; SFT export loads")
PY
