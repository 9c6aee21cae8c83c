"""Reading `/metrics` as Prometheus would: the text format parsed by prometheus_client."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def upstream_requests(text: str, kinds: tuple[str, ...] | None = None) -> Counter[str]:
    """Requests the gateway says it sent, per provider (of the given kinds, or all)."""
    counted: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "propgate_upstream_requests_total" and (
                kinds is None or sample.labels["kind"] in kinds
            ):
                counted[sample.labels["provider"]] += int(sample.value)
    return counted
