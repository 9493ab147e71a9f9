"""Planning the swarm: site, state and forecasts in, a :class:`~optimizer.plan.Plan` out.

Pure computation: no I/O, no global configuration. Entry points:

- :class:`optimizer.planner.Planner` (keeps its model between plans) and
  :func:`optimizer.planner.plan` (one-shot);
- :class:`optimizer.inputs.State`, :data:`optimizer.inputs.FORECAST_COLUMNS`,
  :func:`optimizer.inputs.forecast_from_raw`;
- :class:`optimizer.params.SolveOptions`, :class:`optimizer.params.OptimizerParams`.

See ``optimizer/README.md`` for the model, the plan table's columns and the benchmarks.
"""
