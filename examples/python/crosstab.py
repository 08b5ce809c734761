"""Example analysis: persons by two (or more) variables, exported as a frequency table with
its manifest entry and units, so the disclosure checks can apply the threshold rule to every
cell. The Python twin of examples/crosstab: the same table from the same data.

The variables come from the arguments (`crosstab.py region age`); without arguments it
tabulates region x employment status.
"""

import sys

import ringfence

variables = sys.argv[1:] or ["region", "employment_status"]
persons = ringfence.dataset("persons")
table = ringfence.crosstab(persons, variables)
name = "_by_".join(variables) + ".csv"
ringfence.export_table(name, table, "Persons by " + " and ".join(variables))
