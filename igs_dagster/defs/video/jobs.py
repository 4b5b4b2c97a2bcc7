"""The ingest job: every video asset for one partition, in one process.

The in-process executor runs the steps of a run in its run worker, so a run pays one process
start and loads the Whisper model once; runs still overlap with each other, and the `gpu`
pool keeps transcription steps one at a time across all of them.
"""

import json
import os

import dagster as dg

from igs_dagster.core.settings import Settings
from igs_dagster.dagster_compat import recheck_pool_slots_every
from igs_dagster.defs.resources import startup_settings

# On Kubernetes (K8sRunLauncher) ingest runs go to a GPU node. Only there: the tag means nothing
# to the local and Docker launchers, so their runs don't carry it. IGS_K8S_GPU=0/1 overrides the
# detection (Kubernetes sets KUBERNETES_SERVICE_HOST in every pod).
# Same content as deploy/helm/transcribe-gpu-k8s-config.json (a test keeps them equal).
K8S_GPU_CONFIG = {
    "container_config": {
        "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}},
        "env": [{"name": "IGS_TRANSCRIBER__DEVICE", "value": "cuda"}],
    },
    "pod_spec_config": {
        "node_selector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}

# A step waiting for a pool slot re-checks every second, not with Dagster's back-off of up to 15 s
# (dagster_compat entry 4, bench figure 3); in every process that loads these definitions.
POOL_CLAIM_RECHECK_S = 1.0
recheck_pool_slots_every(POOL_CLAIM_RECHECK_S)


def max_runtime_tags(settings: Settings | None) -> dict[str, str]:
    """`dagster/max_runtime` (IGS_INGEST_MAX_RUNTIME_S), enforced by the daemon's run monitoring
    (0: no limit, as run monitoring reads it).

    On the job, from the settings this process started with (the resources' defaults), so runs
    from the UI and backfills carry it; the inbox sensor's runs carry the value of their tick.
    Invalid settings (None) fall back to the default here: every step of the run reports them.
    """
    seconds = (settings.ingest_max_runtime_s if settings is not None
               else Settings.model_fields["ingest_max_runtime_s"].default)
    return {dg.MAX_RUNTIME_SECONDS_TAG: str(seconds)}


def _k8s_gpu_tags() -> dict[str, str]:
    wanted = os.environ.get("IGS_K8S_GPU", "1" if os.environ.get("KUBERNETES_SERVICE_HOST") else "0")
    return {"dagster-k8s/config": json.dumps(K8S_GPU_CONFIG)} if wanted.strip() == "1" else {}


video_ingest_job = dg.define_asset_job(
    name="video_ingest",
    selection=dg.AssetSelection.groups("video"),
    executor_def=dg.in_process_executor,
    tags={**max_runtime_tags(startup_settings()), **_k8s_gpu_tags()},
    description="Download, archive, transcribe, write and enrich the note for one video.",
)
