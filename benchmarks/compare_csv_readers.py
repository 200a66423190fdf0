"""pyarrow vs polars on a big ratings.csv: seconds and peak RSS to four numpy arrays (the loader's choice).

    python benchmarks/compare_csv_readers.py pyarrow DIR/ratings.csv          # streaming, 16 MiB blocks
    python benchmarks/compare_csv_readers.py pyarrow-table DIR/ratings.csv    # whole table at once
    python benchmarks/compare_csv_readers.py polars DIR/ratings.csv           # needs `pip install polars`

Run each in its own process (peak RSS is per process). Results: docs/results.md, "Data loading".
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np


def main() -> int:
    which, path = sys.argv[1], sys.argv[2]
    started = time.perf_counter()
    if which.startswith("pyarrow"):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        types = {"userId": pa.int64(), "movieId": pa.int64(), "rating": pa.float32(), "timestamp": pa.int64()}
        convert = pacsv.ConvertOptions(column_types=types)
        if which == "pyarrow":
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=16 << 20), convert_options=convert)
            parts: dict[str, list[np.ndarray]] = {k: [] for k in types}
            for batch in reader:
                for key in types:
                    parts[key].append(batch.column(key).to_numpy())
            arrays = {key: np.concatenate(value) for key, value in parts.items()}
        else:
            table = pacsv.read_csv(path, convert_options=convert)
            arrays = {key: table.column(key).to_numpy() for key in types}
            del table
    else:
        import polars as pl

        schema = {"userId": pl.Int64, "movieId": pl.Int64, "rating": pl.Float32, "timestamp": pl.Int64}
        frame = pl.read_csv(path, schema=schema)
        arrays = {key: frame[key].to_numpy() for key in schema}
        del frame
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = sum(a.nbytes for a in arrays.values()) / 1e6
    print(f"{which}: {len(arrays['userId']):,} rows in {elapsed:.2f} s, peak RSS {peak:.0f} MB, arrays {size:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
