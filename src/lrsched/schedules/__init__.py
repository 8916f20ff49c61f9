"""Learning-rate schedules: the curves, the optimizers, their config specs and search spaces."""
