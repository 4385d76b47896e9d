"""The failure scenarios, as data: one folder each (README.md), loaded by aiops_dev.eval.cases.

The two names below keep `checkout_oomkilled(writer)` and `payments_crashloop(writer)` working for the
tests that still write those scenarios by function; new code calls `cases.write(name, writer)`.
"""

from functools import partial

from aiops_dev.eval.cases import write

checkout_oomkilled = partial(write, "checkout-oomkilled")
payments_crashloop = partial(write, "payments-crashloop")
