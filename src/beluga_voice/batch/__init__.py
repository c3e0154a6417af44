"""Batch transcription of many recordings: locally on worker processes, or on a Ray cluster.

Knows nothing of the command line; ``beluga transcribe --output-dir`` is a thin shell over it::

    from beluga_voice.batch import BatchJob, collect_inputs, run_job

    job = BatchJob(collect_inputs(["calls/"]), Path("out"), fmt="json")
    report = run_job(job)           # out/<same folders>/<name>.json, out/_failures.jsonl
"""

from beluga_voice.batch.inputs import AUDIO_EXTENSIONS, BatchInput, collect_inputs, read_manifest
from beluga_voice.batch.job import DEFAULT_MAX_STREAMS, BatchJob, JobProgress, JobReport, run_job
from beluga_voice.batch.outputs import EXTENSIONS, FAILURES_NAME, read_failures
from beluga_voice.batch.tasks import TaskResult

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEFAULT_MAX_STREAMS",
    "EXTENSIONS",
    "FAILURES_NAME",
    "BatchInput",
    "BatchJob",
    "JobProgress",
    "JobReport",
    "TaskResult",
    "collect_inputs",
    "read_failures",
    "read_manifest",
    "run_job",
]
