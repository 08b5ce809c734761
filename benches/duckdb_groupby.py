"""DuckDB, single-threaded, running the example analyses' GROUP BYs on the same Arrow data the
guests read: the reference of benches/analysis.rs.

Reads one request per line on stdin, `PATH QUERY REPEATS MODE`, and answers with the seconds
the repeats took in all:
- QUERY is `income` (income-by-region: count, sum, the two largest values, negatives, zeros
  and missing values per region, as the SDK's MagnitudeTable keeps) or `crosstab` (persons by
  region and employment status).
- MODE `memory` times the query over a table already in memory; `file` also times opening the
  Arrow IPC file (memory-mapped, as pyarrow does best).
"""

import sys
import time

import duckdb
import pyarrow as pa

QUERIES = {
    "income": """
        SELECT region, count(income), sum(income), max(income, 2),
               count(*) FILTER (WHERE income < 0), count(*) FILTER (WHERE income = 0),
               count(*) - count(income)
        FROM persons GROUP BY region
    """,
    "crosstab": "SELECT region, employment_status, count(*) FROM persons GROUP BY region, employment_status",
}


def read(path):
    return pa.ipc.open_file(pa.memory_map(path)).read_all()


def main():
    con = duckdb.connect()
    con.execute("SET threads = 1")
    tables = {}
    for line in sys.stdin:
        path, query, repeats, mode = line.split()
        sql = QUERIES[query]
        if path not in tables:
            tables[path] = read(path)
        started = time.perf_counter()
        for _ in range(int(repeats)):
            table = read(path) if mode == "file" else tables[path]
            con.register("persons", table)
            con.execute(sql).fetchall()
            con.unregister("persons")
        print(time.perf_counter() - started, flush=True)


if __name__ == "__main__":
    main()
