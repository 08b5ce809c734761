"""Escape attempts from inside the Python interpreter: each one must be held, as it is for a
WebAssembly guest. Prints `held: <attempt>: <why>` for each, or `ESCAPED: <attempt>` for one
that got through, and exits 0 either way (the test reads what it printed).

Run with: ringfence run --policy policies/python.toml --user alice examples/python/escapes.py
"""

import os
import time


def attempt(what, action):
    """Runs `action`; it escapes if it returns something true without raising."""
    try:
        leaked = action()
    except BaseException as error:  # every refusal counts, whatever its kind
        print(f"held: {what}: {type(error).__name__}: {error}")
        return
    if leaked:
        print(f"ESCAPED: {what}: {leaked!r}"[:300])
    else:
        print(f"held: {what}: nothing")


def read(path):
    with open(path, "rb") as f:
        return f.read(100)


def append(path):
    with open(path, "ab") as f:
        f.write(b"x")
    return path


def connect():
    import socket

    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.connect(("1.1.1.1", 80))
    return connection


def run_process():
    import subprocess

    return subprocess.run(["/bin/sh", "-c", "id"], capture_output=True).stdout


def load_c():
    import ctypes

    return ctypes.CDLL(None)


def start_thread():
    import threading

    thread = threading.Thread(target=lambda: None)
    thread.start()
    return thread


def fine_clock():
    """A clock finer than the policy's 1 s resolution would let a guest time things."""
    readings = {time.time_ns() % 1_000_000_000 for _ in range(1000)}
    readings |= {time.monotonic_ns() % 1_000_000_000 for _ in range(1000)}
    return readings - {0}


def ungranted_column():
    with open("/data/persons/data.csv") as f:
        header = f.readline().strip().split(",")
    return [c for c in header if c in ("person_id", "household_size")]


attempt("read /etc/passwd", lambda: read("/etc/passwd"))
attempt("read the host through the data mount", lambda: read("/data/persons/../../../../etc/passwd"))
# The host gives no environment; the two matplotlib settings are the SDK's start script's own.
attempt("environment variables", lambda: {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "MPLBACKEND")})
attempt("a socket", connect)
attempt("a subprocess", run_process)
attempt("os.system", lambda: os.system("id") == 0)
attempt("ctypes", load_c)
attempt("a thread", start_thread)
attempt("write the interpreter's library", lambda: append("/usr/local/lib/python315.zip"))
attempt("write the script", lambda: append("/job/analysis.py"))
attempt("write the SDK", lambda: append("/sdk/ringfence.py"))
attempt("write the data", lambda: append("/data/persons/data.csv"))
attempt("a variable the policy does not grant", ungranted_column)
attempt("a clock finer than the policy's", fine_clock)
