"""Training the LeNet: the model, the loop, a run's setup from the config, the paired seeds, their results and figures."""
