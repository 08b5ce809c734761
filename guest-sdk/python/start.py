"""Starts a ringfence script job: the interpreter runs isolated (its path is its library
alone), so this puts the SDK's directory on the path, points matplotlib at the job's scratch
directory (/tmp, discarded with the job) and its file-only backend, then runs the script as
__main__ with the job's arguments, as `python analysis.py ARGS` would."""

import os
import runpy
import sys

os.environ["MPLCONFIGDIR"] = "/tmp/matplotlib"
os.environ["MPLBACKEND"] = "Agg"
sys.path.insert(0, "/sdk")
sys.argv = ["/job/analysis.py", *sys.argv[1:]]
runpy.run_path("/job/analysis.py", run_name="__main__")
