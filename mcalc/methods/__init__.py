"""The derivation methods, peers with one interface: each module has NAME and
derive(req, body, typing, layout) -> Derivation.

  chain         the chain rule (Parr & Howard §4.5)
  differential  differentials and the identification rule (Magnus & Neudecker)
  definition    component by component with SymPy, confirming the rules' result
  automatic     no --method: the differential method by a matrix, the chain rule
                otherwise

graph holds what chain and differential share (intermediates, partials by rule,
layout, substitution); mcalc.pipeline dispatches by name. Nothing is imported here.
"""
