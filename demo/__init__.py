"""The wiring: the one package that composes several components (demo, fleets, simulated agents).

``lockerhub demo`` (``demo.platform``), ``lockerhub sim fleet`` (``demo.fleet``, ``demo.sim``),
``lockerhub edge`` with the simulators (``demo.edge``) and ``lockerhub simulate``, a district's
day (``demo.simulate``). Components never import each other; they
share only the contract package ``lockerhub``.
"""
