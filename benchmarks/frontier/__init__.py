"""Frontier benchmark: does refining the initial noise beat plain CFG at equal diversity?

Modules: ``tasks`` (the digits task and the compositional task behind one interface),
``experiment`` (runs a configuration through the pack's real nodes and ComfyUI's real KSampler),
``frontier`` (matched-diversity comparison with a paired bootstrap), ``report`` (tables, plots),
``run`` (the command line: ``python -m benchmarks.frontier.run``)."""
