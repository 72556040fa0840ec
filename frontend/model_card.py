"""The model page: the champion's version, its test figures with their 95% intervals, its model
card, confusion matrix, and how much feedback has been collected per character.

Sources, each optional (the page says what is missing instead of failing):
- the MLflow registry over its REST API (`bukva.registry`), when MLFLOW_TRACKING_URI is an
  http(s) server: the `champion` alias of `bukva-cnn`, its version, tags and description (the
  model card `register` filed with it; no mlflow package needed);
- the version the inference service reports in its v2 model metadata;
- `reports/metrics.json`, `reports/model_card.md` and `reports/plots/*confusion*` (PNG/SVG, or
  a CSV of actual,predicted pairs) in BUKVA_HOME, as the `evaluate` stage writes them; where
  there is no metrics file (the app's image has no reports/, as in the cluster), the champion's
  test metrics from its registry tags (`metric.*`, written by `register`);
- the feedback store, counted per class folder.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import streamlit as st

from bukva import registry
from bukva.alphabet import CLASSES
from bukva.storage import StoreUnavailable, feedback_counts, reviewed_from_tags
from frontend import resources
from frontend.i18n import text

IMAGE_SUFFIXES = (".png", ".svg", ".jpg")
CARD_FILE = "model_card.md"
# The evaluation sets of metrics.json (the scanned split's figures are its top level) and the
# figures shown for each, with the count each is measured on.
SET_ORDER = ("scanned", "canvas", "block", "combined")
FIGURES = (
    ("letters_accuracy", "letters_count"),
    ("digits_accuracy", "digits_count"),
    ("case_accuracy", "case_count"),
    ("label_accuracy", "count"),
)


def flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """Nested metrics as flat `a.b.c -> value` rows (lists and dicts unrolled)."""
    if isinstance(values, dict):
        rows: dict[str, Any] = {}
        for key, value in values.items():
            rows |= flatten(value, f"{prefix}{key}.")
        return rows
    if isinstance(values, list):
        rows = {}
        for i, value in enumerate(values):
            rows |= flatten(value, f"{prefix}{i}.")
        return rows
    return {prefix.rstrip("."): values}


def read_metrics(home: Path) -> dict[str, Any]:
    """`reports/metrics.json`, flattened; empty when absent or unreadable."""
    path = home / "reports" / "metrics.json"
    try:
        return flatten(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def read_report(home: Path) -> dict[str, Any]:
    """`reports/metrics.json` as evaluate wrote it; empty when absent or unreadable."""
    try:
        data = json.loads((home / "reports" / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def figure_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per set and figure: accuracy, its 95% Wilson interval and the number of images,
    as percentages to one decimal (the interval `-` when the report has none)."""
    sets = {"scanned": report} | {k: v for k, v in report.items() if isinstance(v, dict)}
    ordered = [s for s in SET_ORDER if s in sets] + [s for s in sets if s not in SET_ORDER]
    top = [k for k in report if k.startswith("top") and k.endswith("_accuracy")]
    rows = []
    for name in ordered:
        figures = sets[name]
        for key, count in (*FIGURES, *((t, "count") for t in top)):
            value = figures.get(key)
            if not isinstance(value, int | float) or value != value:
                continue
            bounds = figures.get(f"{key}_interval")
            interval = (
                f"{100 * bounds[0]:.1f}-{100 * bounds[1]:.1f}%"
                if isinstance(bounds, list) and len(bounds) == 2
                else "-"
            )
            rows.append(
                {
                    "set": name,
                    "figure": key.removesuffix("_accuracy"),
                    "accuracy": f"{100 * value:.1f}%",
                    "95% interval": interval,
                    "images": figures.get(count),
                }
            )
    return rows


def read_card(home: Path) -> str:
    """The model card evaluate generated (`reports/model_card.md`); empty when absent."""
    try:
        return (home / "reports" / CARD_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def confusion_source(home: Path) -> Path | None:
    """The confusion-matrix plot the evaluate stage wrote, if any."""
    plots = home / "reports" / "plots"
    if not plots.is_dir():
        return None
    # The label matrix of the scanned split first (top folder), before the case matrix and
    # the drawn sets' (reports/plots/canvas/, block/).
    found = sorted(
        (p for p in plots.rglob("*") if "confusion" in p.name.lower() and p.is_file()),
        key=lambda p: ("label" not in p.name.lower(), len(p.relative_to(plots).parts), p.name),
    )
    for suffix in (*IMAGE_SUFFIXES, ".csv"):
        for path in found:
            if path.suffix.lower() == suffix:
                return path
    return None


def confusion_pairs(path: Path) -> list[dict[str, str]]:
    """(actual, predicted) rows of a confusion CSV, counted for a heatmap."""
    counts: dict[tuple[str, str], int] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            pair = (str(row.get("actual", "")), str(row.get("predicted", "")))
            counts[pair] = counts.get(pair, 0) + 1
    return [{"actual": a, "predicted": p, "count": n} for (a, p), n in counts.items()]


@st.cache_data(ttl=30, show_spinner=False)
def champion(tracking_uri: str) -> dict[str, Any]:
    """The champion model version from the MLflow REST API; {} when it cannot be asked (no
    server, none there, or no champion)."""
    if not registry.is_server(tracking_uri):
        return {}
    try:
        version = registry.version_by_alias(tracking_uri)
    except registry.RegistryUnavailable:
        return {}
    if version is None:
        return {}
    return {
        "version": version.version,
        "run_id": version.run_id,
        "tags": dict(version.tags),
        "description": version.description,
    }


@st.cache_data(ttl=30, show_spinner=False)
def counts_per_character(location: str) -> dict[str, int]:
    """Feedback records per class (cached briefly: listing a bucket is not free)."""
    counts = feedback_counts(resources.feedback_store())
    return {c: counts.get(c, 0) for c in CLASSES}


def _show_versions(lang: str) -> dict[str, Any]:
    config = resources.settings()
    info = champion(config.tracking_uri)
    served = resources.served_model_version(config.bukva_inference_url)
    unknown = text(lang, "unknown")
    left, right = st.columns(2)
    left.metric(text(lang, "model_version"), info.get("version") or unknown)
    right.metric(text(lang, "served_version"), served or unknown)
    if info.get("tags"):
        with st.expander(text(lang, "version_tags")):
            st.json(info["tags"])
    return info


def _show_metrics(lang: str, home: Path, info: dict[str, Any]) -> None:
    st.markdown(f"#### {text(lang, 'metrics')}")
    rows = figure_rows(read_report(home))
    if rows:
        st.caption(text(lang, "metrics_note"))
    elif tagged := registry.metrics_from_tags(info.get("tags") or {}):
        st.caption(text(lang, "metrics_from_registry", version=info.get("version", "")))
        rows = [{"metric": k, "value": v} for k, v in tagged.items()]
    else:
        st.info(text(lang, "no_metrics"))
        return
    st.dataframe(rows, hide_index=True, width="stretch")


def _show_card(lang: str, home: Path, info: dict[str, Any]) -> None:
    """The champion's card from the registry (`info`), else the one the last evaluate wrote."""
    card = info.get("description") or read_card(home)
    if card:
        with st.expander(text(lang, "model_card")):
            st.markdown(card)


def _show_confusion(lang: str, home: Path) -> None:
    st.markdown(f"#### {text(lang, 'confusion')}")
    source = confusion_source(home)
    if source is None:
        st.info(text(lang, "no_confusion"))
    elif source.suffix.lower() in IMAGE_SUFFIXES:
        st.image(str(source))
    else:
        try:
            pairs = confusion_pairs(source)
        except (OSError, ValueError, csv.Error):
            pairs = []
        if not pairs:
            st.info(text(lang, "no_confusion"))
            return
        st.vega_lite_chart(
            {
                "data": {"values": pairs},
                "mark": "rect",
                "encoding": {
                    "x": {"field": "predicted", "type": "nominal", "sort": list(CLASSES)},
                    "y": {"field": "actual", "type": "nominal", "sort": list(CLASSES)},
                    "color": {"field": "count", "type": "quantitative", "scale": {"type": "log"}},
                    "tooltip": [{"field": "actual"}, {"field": "predicted"}, {"field": "count"}],
                },
            },
            width="stretch",
        )


def _show_feedback(lang: str) -> None:
    st.markdown(f"#### {text(lang, 'feedback_counts')}")
    try:
        store = resources.feedback_store()
    except ValueError as exc:  # BUKVA_FEEDBACK_URI is not a folder or an s3:// URI
        st.error(text(lang, "store_config", reason=exc))
        return
    st.caption(store.location)
    try:
        counts = counts_per_character(store.location)
    except (StoreUnavailable, OSError) as exc:
        st.warning(text(lang, "store_down", reason=exc))
        return
    total = sum(counts.values())
    if not total:
        st.info(text(lang, "no_feedback"))
        return
    st.caption(text(lang, "total", n=total))
    rows = [{"character": c, "count": n} for c, n in counts.items()]
    st.vega_lite_chart(
        {
            "data": {"values": rows},
            "height": 200,
            "mark": "bar",
            "encoding": {
                "x": {
                    "field": "character",
                    "type": "nominal",
                    "sort": list(CLASSES),
                    "title": text(lang, "character"),
                    "axis": {"labelAngle": 0},
                },
                "y": {
                    "field": "count",
                    "type": "quantitative",
                    "title": text(lang, "count"),
                    "axis": {"format": "d", "tickMinStep": 1},
                },
            },
        },
        width="stretch",
    )


def _show_learned_from(lang: str, info: dict[str, Any]) -> None:
    """How many reviewed feedback drawings per class the champion learned from (the training
    run's provenance, copied onto the registry version by `register`)."""
    learned = reviewed_from_tags(info.get("tags") or {})
    if not learned:
        return
    st.markdown(f"#### {text(lang, 'learned_from')}")
    st.caption(text(lang, "total", n=sum(learned.values())))
    rows = [{"character": c, "count": n} for c, n in sorted(learned.items())]
    st.dataframe(rows, hide_index=True, width="stretch")


def render(lang: str) -> None:
    """The whole model page."""
    st.subheader(text(lang, "model_title"))
    home = resources.settings().home
    info = _show_versions(lang)
    _show_metrics(lang, home, info)
    _show_card(lang, home, info)
    _show_confusion(lang, home)
    _show_learned_from(lang, info)
    _show_feedback(lang)
