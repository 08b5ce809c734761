"""Never ends: the job must stop at the policy's CPU limit."""

while True:
    pass
