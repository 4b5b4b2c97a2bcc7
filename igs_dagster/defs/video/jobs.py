"""The ingest job: every video asset for one partition, in one process.

The in-process executor runs the steps of a run in its run worker, so a run pays one process
start and loads the Whisper model once; runs still overlap with each other, and the `gpu`
pool keeps transcription steps one at a time across all of them.
"""

import json

import dagster as dg

# On Kubernetes (K8sRunLauncher) ingest runs go to a GPU node; other launchers ignore the tag.
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

video_ingest_job = dg.define_asset_job(
    name="video_ingest",
    selection=dg.AssetSelection.groups("video"),
    executor_def=dg.in_process_executor,
    tags={"dagster-k8s/config": json.dumps(K8S_GPU_CONFIG)},
    description="Download, archive, transcribe, write and enrich the note for one video.",
)
