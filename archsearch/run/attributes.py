"""The names under which a trial's facts are kept in the study's storage (Optuna user attributes).

Both backends write them and the trials table reads them, so each name is spelled here once.
A trial's metrics (``TrialMetrics`` fields: ``miou``, ``latency_ms``, ...) are kept under their
own field names, which are also their trials.csv column names.
"""

from archsearch.study.metrics import PROXY_PREFIX  # proxy.<name>: a zero-cost proxy (also a metric)

SEED = "seed"                    # the training seed of this trial
ARCH_HASH = "arch_hash"          # the sampled architecture, filed under RUN/specs/<arch_hash>.yaml
FAIL_REASON = "fail_reason"      # why it failed; a FAIL trial without one died and is queued again
BAD_INPUT = "bad_input"          # it failed on the study's input (data, the space), which stops the study
INFEASIBLE = "infeasible"        # outside a constraint: recorded, never trained
INTERRUPTED = "interrupted"      # stopped by the user; its point is queued again
STOPPED_BY = "stopped_by"        # the OS error on the run's own files (a full disk) that stopped the run; queued again
RETRY_OF = "retry_of"            # the number of the trial whose point this one runs again
DUPLICATE_OF = "duplicate_of"    # the trained trial (same point and seed) whose result and weights it took
HOST = "host"                    # where it ran, so a dead process's trial is recognised
PID = "pid"
NODE_ID = "node_id"              # the Ray node it ran on
RAY_EXPERIMENT = "ray_experiment"
RAY_TRIAL_ID = "ray_trial_id"
RUNTIME = "runtime"              # OpenMP's variables (and their sources) and torch threads it ran with
RECIPE = "recipe"                # the fingerprint of the settings it was trained with (run.guard)
INTERMEDIATE_PREFIX = "miou_at."  # miou_at.<step>: the mIoU of an evaluation before the last

# Attributes of the study itself.
STUDY_OBJECTIVES = "objectives"
STUDY_GRID_TRIALS = "grid_trials"
STUDY_GRID_QUEUED = "grid_queued"  # how many of the grid's trials (points x seeds, in order) are queued so far
STUDY_RUN_DIRECTORY = "run_directory"  # {id, path} of the one run directory the study belongs to (run.guard)
