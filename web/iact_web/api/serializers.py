"""Explicit output serializers of the API (they also describe the answers in the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class _Out(serializers.Serializer[Any]):
    """Read-only: the API writes nothing through serializers except an acknowledgement note."""

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - never used
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover - never used
        raise NotImplementedError


class Deployment(_Out):
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.source (stubs)
    source_event_id = serializers.CharField()
    service = serializers.CharField()
    environment = serializers.CharField()
    status = serializers.ChoiceField(choices=["success", "failed", "rolled_back"])
    deployed_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    version = serializers.CharField(allow_null=True)
    commit_sha = serializers.CharField(allow_null=True)
    change_ids = serializers.ListField(child=serializers.CharField())


class Change(_Out):
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.source (stubs)
    source_event_id = serializers.CharField()
    service = serializers.CharField()
    commit_sha = serializers.CharField()
    committed_at = serializers.DateTimeField()
    authored_at = serializers.DateTimeField(allow_null=True)
    first_commit_at = serializers.DateTimeField(allow_null=True)
    deployment_id = serializers.CharField(allow_null=True)


class Incident(_Out):
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.source (stubs)
    source_event_id = serializers.CharField()
    service = serializers.CharField()
    environment = serializers.CharField()
    severity = serializers.CharField()
    title = serializers.CharField()
    started_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    deployment_id = serializers.CharField(allow_null=True)


class HealthCheck(_Out):
    host = serializers.CharField()
    component = serializers.CharField()
    check_name = serializers.CharField()
    status = serializers.ChoiceField(choices=["ok", "warning", "critical", "unknown"])
    summary = serializers.CharField()
    latency_ms = serializers.IntegerField(allow_null=True)
    checked_at = serializers.DateTimeField()


class Alert(_Out):
    id = serializers.IntegerField()
    alert_key = serializers.CharField()
    component = serializers.CharField()
    host = serializers.CharField(allow_null=True)
    severity = serializers.ChoiceField(choices=["warning", "critical"])
    status = serializers.ChoiceField(choices=["open", "acknowledged", "resolved"])
    summary = serializers.CharField()
    occurrences = serializers.IntegerField()
    first_seen_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    notified_at = serializers.DateTimeField(allow_null=True, required=False)
    resolved_at = serializers.DateTimeField(allow_null=True, required=False)
    acknowledged_by = serializers.CharField(allow_null=True, required=False)
    acknowledged_at = serializers.DateTimeField(allow_null=True, required=False)


class StrictText(serializers.CharField):
    """Text only: DRF's CharField would turn 5 or true into "5" or "True"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class AcknowledgeIn(serializers.Serializer[Any]):
    note = StrictText(max_length=512, required=False, allow_blank=True, default="")

    def validate_note(self, value: str) -> str:
        if not value.isprintable():
            raise serializers.ValidationError("must be printable text")
        return value.strip()

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - never used
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover - never used
        raise NotImplementedError


class Acknowledgement(_Out):
    alert_id = serializers.IntegerField()
    alert_key = serializers.CharField()
    severity = serializers.CharField()
    acknowledged_by = serializers.CharField()
    acknowledged_at = serializers.DateTimeField()
    note = serializers.CharField()


class JobRun(_Out):
    id = serializers.IntegerField()
    job_name = serializers.CharField()
    host = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=["running", "success", "failure"])
    exit_code = serializers.IntegerField(allow_null=True)
    output_bytes = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(allow_null=True)


class Drill(_Out):
    drill_id = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=["success", "failure"])
    rpo_mysql_s = serializers.FloatField(allow_null=True)
    rto_total_s = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class QualityCheck(_Out):
    check_name = serializers.CharField()
    category = serializers.CharField(allow_null=True)
    dataset = serializers.CharField()
    status = serializers.ChoiceField(choices=["pass", "fail", "error"])
    observed_value = serializers.FloatField(allow_null=True)
    failing_rows = serializers.IntegerField(allow_null=True)
    evaluated_rows = serializers.IntegerField(allow_null=True)
    checked_at = serializers.DateTimeField()


class LogLine(_Out):
    ts = serializers.DateTimeField()
    position = serializers.CharField()
    severity = serializers.CharField(allow_null=True)
    facility = serializers.CharField(allow_null=True)
    program = serializers.CharField(allow_null=True)
    pid = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(allow_null=True)
    parse_error = serializers.BooleanField(allow_null=True)
    fields = serializers.DictField(child=serializers.CharField())  # type: ignore[assignment]  # popped by the metaclass


class LogPage(_Out):
    page_size = serializers.IntegerField()
    next = serializers.CharField(allow_null=True, help_text="URL of the next (older) page")
    results = LogLine(many=True)


class Range(_Out):
    first_day = serializers.DateField()
    last_day = serializers.DateField()
    days = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="exclusive")


class DoraMetricsV1(_Out):
    """v1: flat, durations in hours, deployment frequency as deployments per day (and deploy days/week)."""

    service = serializers.CharField(help_text="'*' for all services")
    window = Range()
    benchmark_year = serializers.IntegerField()
    deployments = serializers.IntegerField()
    deployments_per_day = serializers.FloatField(allow_null=True)
    deployment_days_per_week = serializers.FloatField(allow_null=True)
    deployment_frequency_class = serializers.CharField(allow_null=True)
    changes = serializers.IntegerField()
    lead_time_median_hours = serializers.FloatField(allow_null=True)
    lead_time_p90_hours = serializers.FloatField(allow_null=True)
    lead_time_class = serializers.CharField(allow_null=True)
    failed_changes = serializers.IntegerField()
    change_failure_rate = serializers.FloatField(allow_null=True)
    change_failure_rate_class = serializers.CharField(allow_null=True)
    incidents = serializers.IntegerField()
    time_to_restore_median_hours = serializers.FloatField(allow_null=True)
    time_to_restore_class = serializers.CharField(allow_null=True)


class MetricV2(_Out):
    value = serializers.FloatField(allow_null=True)
    unit = serializers.CharField()
    level = serializers.CharField(allow_null=True, help_text="elite, high, medium, low; null without a value")
    count = serializers.IntegerField(help_text="events the value is computed from")
    events = serializers.CharField(help_text="URL of those events (their count equals `count`)")
    reason = serializers.CharField(allow_null=True, help_text="why the value is null")


class DoraMetricsV2(_Out):
    """v2: one object per key with value, unit (seconds, not hours), level, event count and the URL of the
    events behind it; deployment frequency is deployment days per week (the figure the level rates)."""

    service = serializers.CharField(allow_null=True, help_text="null for all services")
    window = Range()
    benchmark_year = serializers.IntegerField()
    deployment_frequency = MetricV2()
    lead_time = MetricV2()
    change_failure_rate = MetricV2()
    failed_deployment_recovery_time = MetricV2()


def page_of(child: serializers.Serializer[Any]) -> serializers.Serializer[Any]:
    """A paged list of ``child`` (for the schema)."""

    class Page(_Out):
        count = serializers.IntegerField()
        page = serializers.IntegerField()
        page_size = serializers.IntegerField()
        next = serializers.CharField(allow_null=True)
        results = type(child)(many=True)

    Page.__name__ = f"{type(child).__name__}Page"
    return Page()
