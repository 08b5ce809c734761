"""ringfence's Python SDK: read the project's data, export tables the host can check.

Inside the sandbox this module is on your script's path (``/sdk/ringfence.py``), read-only.
Everything you export goes to the export queue: the host recomputes every published number
from the rows each cell names in the data your job saw, and an output checker approves it
before you see it. Outside the sandbox (developing on dummy data) set ``RINGFENCE_DATA_DIR``
and ``RINGFENCE_EXPORT_DIR``.

    import ringfence

    persons = ringfence.dataset("persons")              # a pandas DataFrame
    table = ringfence.crosstab(persons, ["region", "employment_status"])
    ringfence.export_table("by_region.csv", table, "Persons by region and status")

The DataFrame's index is each row's number in the data the host holds: keep it (filter,
select and group as you like, but do not ``reset_index``), so every cell can name its rows.
Tables written here have the Rust SDK's cells, numbers and units (manifest version 2, units as
Roaring bitmaps in ``manifest.units``): ``crosstab``, ``magnitude``, ``quantiles`` and ``ols``.
Figures (``savefig``) and other files (``export_file``) are free-form outputs: a checker
reviews them by eye.
"""

import io
import json
import math
import os
import struct

import numpy as np
import pandas as pd

DATA_DIR = os.environ.get("RINGFENCE_DATA_DIR", "/data")
EXPORT_DIR = os.environ.get("RINGFENCE_EXPORT_DIR", "/export")

#: The label of a missing category, as the host labels it.
MISSING = "(missing)"
MANIFEST_FILE = "manifest.json"
UNITS_FILE = "manifest.units"
MANIFEST_VERSION = 2
_MOUNT = "ringfence_mount"

_DTYPES = {"int64": "Int64", "float64": "float64", "utf8": "string", "category": "string", "bool": "boolean"}


def dataset(mount):
    """The granted dataset mounted at ``/data/<mount>/`` as a DataFrame indexed by row number."""
    folder = os.path.join(DATA_DIR, mount)
    with open(os.path.join(folder, "schema.json"), encoding="utf-8") as f:
        columns = json.load(f)["columns"]
    dtypes = {c["name"]: _DTYPES.get(c["type"], "string") for c in columns}
    frame = pd.read_csv(
        os.path.join(folder, "data.csv"),
        dtype=dtypes,
        keep_default_na=False,
        na_values={name: [""] for name in dtypes},
    )
    frame.attrs[_MOUNT] = mount
    return frame


class Table:
    """A table ready to export: what its manifest entry says (kind, variables, value, cells or
    a fit) and each cell's rows, and what its CSV holds (a header and rows of fields)."""

    def __init__(self, kind, variables, value, cells, units, mount, header, rows, regression=None):
        self.kind = kind
        self.variables = list(variables)
        self.value = value
        self.cells = cells
        self.units = units
        self.mount = mount
        self.header = header
        self.rows = rows
        self.regression = regression

    def to_csv(self):
        """The table as CSV: its header, then one line per row."""
        lines = [",".join(_field(f) for f in self.header)]
        lines += [",".join(_field(f) for f in row) for row in self.rows]
        return "\n".join(lines) + "\n"

    def to_frame(self):
        """The table as a DataFrame (for a look at it in the job's own code)."""
        return pd.read_csv(io.StringIO(self.to_csv()), dtype=str, keep_default_na=False)


def crosstab(frame, variables):
    """Units per combination of ``variables`` (a frequency table): ACRO's ``crosstab``."""
    groups = _groups(frame, variables)
    cells = [{"key": key, "count": len(rows)} for key, rows in groups]
    rows = [c["key"] + [str(c["count"])] for c in cells]
    return Table("frequency", variables, None, cells, [m for _, m in groups], _mount(frame), [*variables, "count"], rows)


def magnitude(frame, variables, value):
    """Count, sum and mean of ``value`` per combination of ``variables``, with the largest
    contributions the dominance rules need: ACRO's ``pivot_table(aggfunc="sum")``."""
    groups = _groups(frame, variables)
    values = pd.to_numeric(frame[value], errors="coerce").astype("float64")
    cells, rows = [], []
    for key, members in groups:
        present = values.loc[members].to_numpy(dtype="float64", na_value=np.nan)
        missing = int(np.isnan(present).sum())
        present = present[~np.isnan(present)]
        largest = np.sort(present)[::-1]
        total = float(math.fsum(present))
        count = int(present.size)
        cells.append({
            "key": key,
            "count": count,
            "sum": total,
            "top1": float(largest[0]) if count > 0 else 0.0,
            "top2": float(largest[1]) if count > 1 else 0.0,
            "negatives": int((present < 0).sum()),
            "zeros": int((present == 0).sum()),
            "missing": missing,
        })
        mean = _number(total / count) if count else ""
        rows.append(key + [str(count), _number(total), mean])
    header = [*variables, "count", "sum", "mean"]
    return Table("magnitude", variables, value, cells, [m for _, m in groups], _mount(frame), header, rows)


def quantiles(frame, variables, value, probabilities):
    """Quantiles ``probabilities`` (each in [0, 1]) of ``value`` per combination of
    ``variables``, with how many units stand at each: R's type 7, as the Rust SDK and the host
    compute them. The minimum and maximum (0 and 1) are single units' values: the checks
    refuse them without an override."""
    probabilities = [float(p) for p in probabilities]
    if not probabilities or any(not 0.0 <= p <= 1.0 for p in probabilities):
        raise ValueError("quantile probabilities must be between 0 and 1")
    groups = _groups(frame, variables)
    values = pd.to_numeric(frame[value], errors="coerce").astype("float64")
    cells, rows = [], []
    for key, members in groups:
        present = values.loc[members].to_numpy(dtype="float64", na_value=np.nan)
        ordered = np.sort(present[~np.isnan(present)])
        at = [_quantile(ordered, p) for p in probabilities]
        quantile_values = [
            {"p": p, "value": v if math.isfinite(v) else None, "units_at_value": n} for p, (v, n) in zip(probabilities, at)
        ]
        cells.append({
            "key": key,
            "count": int(ordered.size),
            "missing": int(np.isnan(present).sum()),
            "quantiles": quantile_values,
        })
        rows.append(key + [str(int(ordered.size))] + [_number(v) for v, _ in at])
    # The Rust SDK's column names: p50, p2.5 (p * 1000 rounded half away from zero, / 10).
    header = [*variables, "count"] + ["p" + _number(math.floor(p * 1000 + 0.5) / 10) for p in probabilities]
    return Table("quantiles", variables, value, cells, [m for _, m in groups], _mount(frame), header, rows)


def ols(frame, dependent, numeric=(), categorical=()):
    """An ordinary least-squares regression of ``dependent`` on an intercept, the ``numeric``
    terms and a dummy per category of each ``categorical`` term but its first (the reference),
    fitted with statsmodels: ACRO's ``ols``. Rows missing any of them are left out; the units
    are the rows used, so the host confirms the observations and residual degrees of freedom."""
    import statsmodels.api as sm

    columns = [dependent, *numeric, *categorical]
    used = frame[columns].dropna()
    design = pd.DataFrame({"(intercept)": np.ones(len(used))}, index=used.index)
    for term in numeric:
        design[term] = pd.to_numeric(used[term]).astype("float64")
    for term in categorical:
        labels = _labels(used[term])
        for category in sorted(set(labels))[1:]:
            design[f"{term}={category}"] = (labels == category).astype("float64")
    fit = sm.OLS(pd.to_numeric(used[dependent]).astype("float64"), design).fit()
    coefficients = [
        {"term": term, "estimate": float(fit.params[term]), "std_error": float(fit.bse[term])}
        for term in design.columns
    ]
    summary = {
        "dependent": dependent,
        "n": int(fit.nobs),
        "residual_dof": int(round(fit.df_resid)),
        "r_squared": float(fit.rsquared),
        "coefficients": coefficients,
    }
    rows = [[c["term"], _number(c["estimate"]), _number(c["std_error"])] for c in coefficients]
    units = [np.asarray(used.index, dtype=np.int64)]
    header = ["term", "estimate", "std_error"]
    return Table("regression", [*numeric, *categorical], dependent, [], units, _mount(frame), header, rows, summary)


def export_table(name, table, description):
    """Writes ``table`` as the CSV export ``name`` with its manifest entry and units."""
    _check_name(name)
    entry = {
        "file": name,
        "kind": table.kind,
        "description": description,
        "variables": table.variables,
        "cells": table.cells,
    }
    if table.value is not None:
        entry["value"] = table.value
    if table.regression is not None:
        entry["regression"] = table.regression
    if table.mount is not None and table.units is not None:
        entry["units"] = _append_units(table.mount, table.units)
    _write_with_entry(name, table.to_csv().encode("utf-8"), entry)


def export_file(name, data, description):
    """Writes ``data`` (bytes or text) as the free-form export ``name``: a note, an image. The
    checks cannot judge such files, so an output checker always reviews them."""
    _check_name(name)
    if isinstance(data, str):
        data = data.encode("utf-8")
    entry = {"file": name, "kind": "file", "description": description, "variables": [], "cells": []}
    _write_with_entry(name, bytes(data), entry)


def savefig(name, description, figure=None, **options):
    """Saves a matplotlib figure (the current one unless ``figure`` is given) as the free-form
    export ``name``, in the format its extension names (``.png``, ``.svg``, ``.pdf``); other
    keyword arguments go to matplotlib's ``savefig``. A figure is reviewed by an output
    checker like any free-form file: draw only what you would publish as a table."""
    _check_name(name)
    formats = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
    extension = os.path.splitext(name)[1].lower()
    if extension not in formats:
        raise ValueError(f"{name!r}: a figure is saved as .png, .svg or .pdf")
    if figure is None:
        import matplotlib.pyplot as plt

        figure = plt.gcf()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=formats[extension], **options)
    export_file(name, buffer.getvalue(), description)


def _quantile(ordered, p):
    """Quantile ``p`` of sorted ``ordered`` (R's type 7) and the units equal to it; NaN with no
    units for no values."""
    n = len(ordered)
    if n == 0:
        return float("nan"), 0
    h = (n - 1) * p
    low = int(math.floor(h))
    high = min(low + 1, n - 1)
    value = float(ordered[low] + (h - low) * (ordered[high] - ordered[low]))
    return value, int(np.searchsorted(ordered, value, "right") - np.searchsorted(ordered, value, "left"))


def _groups(frame, variables):
    """The table's cells in key order: each key (labels as the host gives them) and its rows."""
    missing = [v for v in variables if v not in frame.columns]
    if missing or not variables:
        raise ValueError(f"a table needs variables of the data; not found: {missing or variables}")
    labels = pd.DataFrame({v: _labels(frame[v]) for v in variables}, index=frame.index)
    groups = []
    for key, members in labels.groupby(list(variables), sort=False).groups.items():
        key = list(key) if isinstance(key, tuple) else [key]
        groups.append(([str(k) for k in key], np.sort(np.asarray(members, dtype=np.int64))))
    groups.sort(key=lambda group: group[0])
    return groups


def _labels(column):
    """Each row's category as the host labels it: the text, an integer's digits, or MISSING."""
    return column.astype("string").fillna(MISSING).astype(str)


def _mount(frame):
    """The mount the frame's rows come from, when it still says and its index is row numbers."""
    mount = frame.attrs.get(_MOUNT)
    index = frame.index
    if mount is None or not pd.api.types.is_integer_dtype(index) or (len(index) and index.min() < 0):
        return None
    return mount


def _append_units(mount, units):
    """Appends one Roaring bitmap per cell to the units file; returns where they are."""
    block = b"".join(_roaring(rows) for rows in units)
    path = os.path.join(EXPORT_DIR, UNITS_FILE)
    with open(path, "ab") as f:
        offset = f.tell()
        f.write(block)
    return {"mount": mount, "offset": offset, "length": len(block)}


def _roaring(rows):
    """The portable serialization of a Roaring bitmap of ``rows`` (sorted, distinct, below
    2^32): array containers up to 4096 values, bitmap containers above."""
    rows = np.unique(np.asarray(rows, dtype=np.uint32))
    highs = rows >> 16
    keys, starts = np.unique(highs, return_index=True)
    ends = list(starts[1:]) + [len(rows)]
    containers = []
    for start, end in zip(starts, ends):
        low = (rows[start:end] & 0xFFFF).astype("<u2")
        if len(low) <= 4096:
            containers.append(low.tobytes())
        else:
            bits = np.zeros(65536, dtype=bool)
            bits[low] = True
            containers.append(np.packbits(bits, bitorder="little").tobytes())
    header = struct.pack("<II", 12346, len(keys))
    header += b"".join(struct.pack("<HH", int(k), int(e - s - 1)) for k, s, e in zip(keys, starts, ends))
    offset = len(header) + 4 * len(keys)
    offsets = []
    for body in containers:
        offsets.append(struct.pack("<I", offset))
        offset += len(body)
    return header + b"".join(offsets) + b"".join(containers)


def _write_with_entry(name, data, entry):
    """Writes the output file, then replaces its entry in the manifest."""
    path = os.path.join(EXPORT_DIR, MANIFEST_FILE)
    manifest = {"version": MANIFEST_VERSION, "outputs": []}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    manifest["outputs"] = [o for o in manifest["outputs"] if o.get("file") != name] + [entry]
    with open(os.path.join(EXPORT_DIR, name), "wb") as f:
        f.write(data)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, allow_nan=False)


def _check_name(name):
    """Refuses a name the host would refuse: a plain file name of A-Z a-z 0-9 . _ -."""
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
    if (not name or len(name.encode()) > 100 or name in (".", "..", MANIFEST_FILE, UNITS_FILE)
            or not set(name) <= allowed):
        raise ValueError(f"{name!r} is not a valid export name: use a plain file name of at most 100 bytes "
                         "from A-Z a-z 0-9 . _ -, such as table.csv")


def _field(text):
    """A CSV field, quoted when it needs it."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _number(value):
    """A number as the Rust SDK writes it: integers without a fraction, others shortest."""
    if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))
