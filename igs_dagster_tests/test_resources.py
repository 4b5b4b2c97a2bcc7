"""The settings as Dagster resources (defs/resources.py): the launchpad shows them with the
settings' values as defaults, a run launched with a changed value uses it, a run without one
sees the settings as they are when it starts, and sensors take them as parameters."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg
import pytest

from igs_dagster.core.errors import SettingsError
from igs_dagster_tests.dagster_env import REPO, DagsterEnv, handed

RESOURCES = {"igs", "vault", "agent", "whisper", "archive_target", "igs_loop"}


def _config_fields(job, resource: str) -> dict:
    resources = job.run_config_schema.config_type.fields["resources"].config_type.fields
    return resources[resource].config_type.fields["config"].config_type.fields


def test_each_setting_group_is_typed_resource_config_with_the_settings_as_defaults():
    from igs_dagster.definitions import defs
    from igs_dagster.defs.resources import startup_settings

    settings = startup_settings()
    job = defs.resolve_job_def("video_ingest")
    whisper = _config_fields(job, "whisper")
    assert whisper["model"].default_value == settings.transcriber.model
    assert whisper["model"].description.startswith("IGS_TRANSCRIBER__MODEL")
    assert whisper["beam_size"].default_value == settings.transcriber.beam_size
    assert _config_fields(job, "vault")["vault_dir"].default_value == str(settings.vault_dir)
    assert _config_fields(job, "archive_target")["sftp_port"].default_value == settings.archive.sftp_port
    assert _config_fields(job, "igs")["max_height"].description.startswith("IGS_MAX_HEIGHT")
    for name in ("loop_story", "loop_attempt", "loop_finish"):
        loop_job = defs.resolve_job_def(name)
        assert _config_fields(loop_job, "agent")["timeout_s"].default_value == settings.agent.timeout_s
    # a value of the wrong kind is refused by Dagster's config check before a run starts
    valid = dg.validate_run_config(job, {"resources": {"whisper": {"config": {"device": "cpu"}}}})
    assert valid["resources"]["whisper"]["config"]["device"] == "cpu"
    with pytest.raises(dg.DagsterInvalidConfigError, match="not in enum type"):
        dg.validate_run_config(job, {"resources": {"whisper": {"config": {"device": "tpu"}}}})


def test_a_changed_value_is_applied_and_validated_like_the_settings(igs_env):
    from igs_dagster.defs.resources import IgsSettings, Vault
    from igs_dagster.defs.video.resources import ArchiveTarget, WhisperModel

    igs = IgsSettings()
    assert igs.get() == igs_env and not igs.overrides()  # nothing changed: the settings as read
    assert igs.get(Vault(vault_dir="/elsewhere/vault")).vault_dir == Path("/elsewhere/vault")
    changed = igs.get(WhisperModel(model="base", beam_size=1))
    assert (changed.transcriber.model, changed.transcriber.beam_size) == ("base", 1)
    assert changed.transcriber.device == igs_env.transcriber.device  # the rest as set
    with pytest.raises(SettingsError, match=r"^invalid value in the run's resource config: "
                                            r"archive: Value error, sftp_user is required"):
        igs.get(ArchiveTarget(sftp_host="nas.example"))


def test_sensors_take_the_settings_resource_as_a_parameter():
    from igs_dagster.definitions import defs

    repo = defs.get_repository_def()
    assert repo.get_sensor_def("feed_sensor").required_resource_keys == {"igs"}
    assert repo.get_sensor_def("waiting_videos").required_resource_keys == {"igs"}
    # igs_events builds the same resource itself, once per tick: a resource parameter would
    # re-open the instance on every tick in the code server (defs/events.py)
    assert repo.get_sensor_def("igs_events").required_resource_keys == set()
    assert set(repo.get_top_level_resources()) == RESOURCES


LAUNCHPAD = """
query ($selector: PipelineSelector!) {
  runConfigSchemaOrError(selector: $selector) {
    __typename ... on RunConfigSchema { rootDefaultYaml }
  }
}"""
LAUNCH = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""


@pytest.mark.slow
def test_the_launchpad_shows_the_settings_and_a_launched_run_uses_a_changed_value(tmp_path):
    """Through Dagster's GraphQL API on a code server of the project (what the UI does): the
    launchpad's default config holds the resources with this deployment's settings; a run of
    `vault_note` launched with another vault writes its note there."""
    from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

    from igs_dagster.core.events import TranscriptProcess, TranscriptProcessData
    from igs_dagster.core.settings import load_settings
    from igs_dagster.definitions import defs
    from igs_dagster.intake import accept

    dep = DagsterEnv.create(tmp_path, IGS_MAX_HEIGHT="720")
    other = tmp_path / "other-vault"
    with dep.activated():
        settings = load_settings()
        key = accept(TranscriptProcess(name="transcript.process", data=TranscriptProcessData(
            text="We agreed to ship the archive first. Then the benchmarks.", source="meeting",
            title="Planning")), settings).key
        instance = dep.instance()
        instance.add_dynamic_partitions("videos", [key])
        first = [dg.AssetKey(n) for n in ("video_download", "video_archive", "transcript")]
        assert defs.resolve_job_def("video_ingest").execute_in_process(
            instance=instance, partition_key=key, asset_selection=first).success
        selector = {"repositoryLocationName": "igs_dagster.definitions",
                    "repositoryName": "__repository__", "pipelineName": "video_ingest"}
        with define_out_of_process_context(str(REPO / "workspace.yaml"), None, instance) as context:
            shown = execute_dagster_graphql(context, LAUNCHPAD, {"selector": selector}).data
            defaults = shown["runConfigSchemaOrError"]["rootDefaultYaml"]
            assert "max_height: 720" in defaults and f"vault_dir: {settings.vault_dir}" in defaults
            assert "model: bundled" in defaults and "tool: none" in defaults

            params = {
                "selector": {**{k: v for k, v in selector.items() if k != "pipelineName"},
                             "jobName": "video_ingest", "assetSelection": [{"path": ["vault_note"]}]},
                "runConfigData": {"resources": {"vault": {"config": {"vault_dir": str(other)}}}},
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": key}]},
            }
            launched = execute_dagster_graphql(context, LAUNCH, {"params": params}).data["launchRun"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            run_id = launched["run"]["runId"]
            # queued (the run queue): launched here as the daemon's dequeuer would
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.QUEUED
            instance.launch_run(run_id, context)
            deadline = time.monotonic() + 240
            while not instance.get_run_by_id(run_id).is_finished and time.monotonic() < deadline:
                time.sleep(0.5)
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
        note = Path(handed(settings, key, "vault_note")["note_path"])
        instance.dispose()
    assert note.parent == other / "Resources" / "videos" and note.is_file()
    assert not (settings.vault_dir / "Resources" / "videos" / note.name).exists()
    assert json.loads(json.dumps(run.run_config))["resources"]["vault"]["config"]["vault_dir"] == str(other)
