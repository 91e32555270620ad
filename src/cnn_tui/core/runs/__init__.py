"""Runs: the run folder and its lock, events file, index, results, how a run executes, and the run process."""
