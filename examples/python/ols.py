"""Example analysis: income regressed on age, sex and education with statsmodels, exported
with the observations and residual degrees of freedom the disclosure checks need (and the rows
used, so the host confirms them). The Python twin of examples/ols.
"""

import ringfence

persons = ringfence.dataset("persons")
fit = ringfence.ols(persons, "income", numeric=["age"], categorical=["sex", "education"])
print(f"n = {fit.regression['n']}, residual dof = {fit.regression['residual_dof']}, R² = {fit.regression['r_squared']:.4f}")
ringfence.export_table("income_regression.csv", fit, "OLS of income on age, sex and education")
