"""h5py reference for the store benchmark: the same shape, chunking, compression and access
pattern as bench-store (batches of 256 rows appended with resize, blocks of 4096 rows read into
a preallocated array). Like Linprobe's store (DESIGN: feature chunks carry Fletcher-32 checksums),
the numeric datasets get HDF5's Fletcher-32 filter; `--no-checksum` as a sixth argument leaves it
off. Prints one JSON line per repeat, with wall and CPU (user + system) seconds."""
import json
import os
import sys
import time

import h5py
import numpy as np

folder, rows, dim, level, repeats, chunk_rows = sys.argv[1], *map(int, sys.argv[2:7])
checksum = "--no-checksum" not in sys.argv[7:]


def cpu_now():
    return sum(os.times()[:2])


batch = 256
i = np.arange(batch * dim, dtype=np.uint64)
block = np.where(i % 3 == 0, 0.0, ((i * 2654435761) % 10007) / 10007).astype(np.float32).reshape(batch, dim)
for r in range(repeats):
    path = os.path.join(folder, f"bench-h5py-{r}.h5")
    t0, c0 = time.perf_counter(), cpu_now()
    with h5py.File(path, "w") as f:
        kw = dict(compression="gzip", compression_opts=level, shuffle=True) if level else {}
        ds = f.create_dataset("features/res4", shape=(0, dim), maxshape=(None, dim), chunks=(chunk_rows, dim), dtype="f4",
                              fletcher32=checksum, **kw)
        tg = f.create_dataset("targets", shape=(0,), maxshape=(None,), chunks=(chunk_rows,), dtype="i8",
                              fletcher32=checksum)
        ix = f.create_dataset("indices", shape=(0,), maxshape=(None,), chunks=(chunk_rows,), dtype="i8",
                              fletcher32=checksum)
        ps = f.create_dataset("image_paths", shape=(0,), maxshape=(None,), chunks=(chunk_rows,), dtype=h5py.string_dtype())
        row = 0
        while row < rows:
            n = min(batch, rows - row)
            for d in (ds, tg, ix, ps):
                d.resize(row + n, axis=0)
            ds[row:row + n] = block[:n]
            tg[row:row + n] = 1
            ix[row:row + n] = np.arange(row, row + n)
            ps[row:row + n] = ["x.jpg"] * n
            row += n
            if row % (batch * 16) == 0:
                f.flush()
        f.attrs["complete"] = 1
    write_s, write_cpu_s = time.perf_counter() - t0, cpu_now() - c0
    t0, c0 = time.perf_counter(), cpu_now()
    total = 0.0
    with h5py.File(path, "r") as f:
        ds = f["features/res4"]
        buf = np.empty((4096, dim), dtype=np.float32)
        row = 0
        n_rows = ds.shape[0]
        while row < n_rows:
            n = min(4096, n_rows - row)
            ds.read_direct(buf, np.s_[row:row + n], np.s_[0:n])
            total += float(buf[0, 0])
            row += n
    read_s, read_cpu_s = time.perf_counter() - t0, cpu_now() - c0
    size = os.path.getsize(path)
    os.remove(path)
    print(json.dumps({"write_s": write_s, "read_s": read_s, "write_cpu_s": write_cpu_s, "read_cpu_s": read_cpu_s,
                      "file_bytes": size, "check": total}))
