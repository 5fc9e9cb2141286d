"""Reading the CSV files dso writes (``dso simulate``, ``Task.simulate``) into numpy arrays."""

import numpy as np

from ._lib import ERR_INPUT, Error


def read_csv(path):
    """Columns of a dso CSV file by name (time, episode, validation, qpos.*, qvel.*, ctrl.*,
    sensor.*) as float64 arrays of one value per sample."""
    with open(path, "r", encoding="utf-8") as fh:
        header = fh.readline().strip()
        if not header:
            raise Error("%s: empty file, expected a header line" % path, ERR_INPUT)
        names = [c.strip() for c in header.split(",")]
        rows = np.loadtxt(fh, delimiter=",", dtype=np.float64, ndmin=2)
    if rows.shape[1] != len(names):
        raise Error("%s: %d columns in the header, %d in the rows" %
                    (path, len(names), rows.shape[1]), ERR_INPUT)
    return {name: np.ascontiguousarray(rows[:, k]) for k, name in enumerate(names)}
