"""The floor everything stands on: errors, files, signals, CPU pins, devices, the worker pool, callbacks, statistics."""
