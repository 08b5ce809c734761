"""Starts a ringfence script job: the interpreter runs isolated (its path is its library
alone), so this puts the SDK's directory on the path, then runs the script as __main__ with
the job's arguments, as `python analysis.py ARGS` would."""

import runpy
import sys

sys.path.insert(0, "/sdk")
sys.argv = ["/job/analysis.py", *sys.argv[1:]]
runpy.run_path("/job/analysis.py", run_name="__main__")
