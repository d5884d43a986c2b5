"""`cashback worker` as a real process for the kill tests.

The one difference from production: the job timeout comes from RELIABILITY_JOB_TIMEOUT_S.
arq lets another worker take over a job whose worker died only once the job's in-progress
mark expires (timeout + 10 s), so a short timeout keeps the recovery these tests wait for
short; production recovers the same way after JOB_TIMEOUT_S + 10 s.
"""

from __future__ import annotations

import os

from app.core import jobs as job_runner

if __name__ == "__main__":
    # workers.worker reads it when it builds the worker (and the sweeper when it runs).
    timeout_s = int(os.environ.get("RELIABILITY_JOB_TIMEOUT_S", "30"))
    setattr(job_runner, "JOB_TIMEOUT_S", timeout_s)  # noqa: B010
    from app.cli import cli

    cli(["worker"])
