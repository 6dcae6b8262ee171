"""``stableseg demo``: the whole system end to end on the embedded stack (see :mod:`services.demo.run`)."""
