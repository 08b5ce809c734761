"""Takes memory until none is left: the job must stop at the policy's memory limit."""

blocks = []
while True:
    blocks.append(bytearray(16 << 20))
