"""Example analysis: mean and total income by region, exported as a magnitude table whose
manifest entry carries each cell's two largest incomes, so the disclosure checks can apply the
dominance and p% rules. The Python twin of examples/income-by-region.
"""

import ringfence

persons = ringfence.dataset("persons")
table = ringfence.magnitude(persons, ["region"], "income")
ringfence.export_table("income_by_region.csv", table, "Mean and total income by region")
