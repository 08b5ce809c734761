"""Example analysis: a bar chart of mean income by region, exported as a figure. The numbers
behind it are exported too, as a magnitude table the host checks; the figure itself is a
free-form output that an output checker reviews by eye against that table.
"""

import matplotlib.pyplot as plt

import ringfence

persons = ringfence.dataset("persons")
table = ringfence.magnitude(persons, ["region"], "income")
ringfence.export_table("income_by_region.csv", table, "Mean income by region (the figure's numbers)")

means = table.to_frame()
figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
axes.bar(means["region"], means["mean"].astype(float), color="#4c72b0")
axes.set_xlabel("region")
axes.set_ylabel("mean income")
axes.set_title("Mean income by region")
figure.tight_layout()
ringfence.savefig("income_by_region.png", "Bar chart of mean income by region", figure)
