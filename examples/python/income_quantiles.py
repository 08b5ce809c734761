"""Example analysis: the quartiles of income by region, with how many persons stand at each
quartile, which the host recomputes from the rows each cell names."""

import ringfence

persons = ringfence.dataset("persons")
table = ringfence.quantiles(persons, ["region"], "income", [0.25, 0.5, 0.75])
ringfence.export_table("income_quartiles_by_region.csv", table, "Quartiles of income by region")
