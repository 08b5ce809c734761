"""Prints far more than the policy's output cap: the capture keeps the first bytes up to the
cap, the job goes on, and the researcher sees none of it."""

line = "x" * 99
for _ in range(100_000):
    print(line)
