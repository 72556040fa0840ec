"""The Review page: a person looks at new feedback before it trains the next model.

New records (no decision yet) are shown in a grid, grouped by their label; the groups and the
drawings in them are ordered by the model's probability for the label when the drawing was
saved, lowest first (a label outside its top-k, or a drawing saved while the model was down,
counts as 0), so the likely mistakes come first. The person ticks "Wrong" under the bad ones
and presses one button (a form: ticking does not rerun the page): the ticked ones are
rejected, the rest of those shown approved
(`bukva.storage.set_review`: `reviews/<id>.json` in the store). `make retrain` takes approved
records only (params.yaml `ingest.feedback_reviewed_only`); rejected ones never train.
`python -m pipelines.review` does the same without a browser.
"""

from __future__ import annotations

from itertools import groupby

import streamlit as st

from bukva.alphabet import is_digit
from bukva.storage import (
    APPROVED,
    REJECTED,
    FeedbackRecord,
    ObjectStore,
    StoredRecord,
    StoreUnavailable,
    set_review,
    stored_records,
)
from frontend import resources
from frontend.i18n import text

PAGE_SIZE = 120  # drawings shown at once (the most doubtful); the rest after these are done
COLUMNS = 6
THUMB = 84  # px: the 280 px canvas at 0.3x, enough to see the character and its case
DATA_KEY = "review-data"


def review_order(records: list[StoredRecord]) -> list[tuple[str, list[StoredRecord]]]:
    """New records grouped by label: the group with the least likely drawing first, and in
    each group the least likely first."""
    new = [r for r in records if not r.review]
    new.sort(key=lambda r: (r.record.label, r.unlikely, r.record.created_at))
    groups = [(label, list(rows)) for label, rows in groupby(new, key=lambda r: r.record.label)]
    groups.sort(key=lambda group: (group[1][0].unlikely, group[0]))
    return groups


def render(lang: str) -> None:
    """The whole review page."""
    st.subheader(text(lang, "review_title"))
    st.caption(text(lang, "review_help"))
    notice = st.session_state.pop("review-notice", None)
    if notice:
        st.success(notice)
    try:
        store = resources.feedback_store()
        records, broken = _records(store)
    except ValueError as exc:
        st.error(text(lang, "store_config", reason=exc))
        return
    except StoreUnavailable as exc:
        st.error(text(lang, "store_down", reason=exc))
        return
    statuses = [r.review for r in records]
    counts, refresh = st.columns([4, 1], vertical_alignment="center")
    counts.caption(
        text(
            lang,
            "review_counts",
            new=statuses.count(""),
            approved=statuses.count(APPROVED),
            rejected=statuses.count(REJECTED),
        )
    )
    if refresh.button(text(lang, "review_refresh"), key="review-refresh"):
        st.session_state.pop(DATA_KEY, None)
        st.rerun()
    if broken:
        key, reason = next(iter(broken.items()))
        st.warning(text(lang, "review_unreadable", n=len(broken), key=key, reason=reason))
    groups, shown = [], 0
    for label, rows in review_order(records):
        rows = rows[: PAGE_SIZE - shown]
        if not rows:
            break
        groups.append((label, rows))
        shown += len(rows)
    if not groups:
        st.info(text(lang, "review_empty"))
        return
    # A form: ticking a box does not rerun the page (nor read the store again); the button
    # sends every tick at once.
    with st.form("review-form", border=False):
        for label, rows in groups:
            st.markdown(f"**{label if is_digit(label) else label.upper() + label}**")
            _grid(lang, store, rows)
        apply = st.form_submit_button(
            text(lang, "review_approve_rest", n=shown), type="primary", key="review-apply"
        )
    if apply:
        _apply(lang, store, [row for _, rows in groups for row in rows])


def _records(store: ObjectStore) -> tuple[list[StoredRecord], dict[str, str]]:
    """The store's records, read once per visit (Refresh or a decision reads them again)."""
    if DATA_KEY not in st.session_state:
        st.session_state[DATA_KEY] = stored_records(store)
    return st.session_state[DATA_KEY]


def _apply(lang: str, store: ObjectStore, shown: list[StoredRecord]) -> None:
    marked = {r.record.id for r in shown if st.session_state.get(f"rv-{r.record.id}")}
    try:
        for row in shown:
            status = REJECTED if row.record.id in marked else APPROVED
            set_review(store, row.record, status, reviewer="app")
    except StoreUnavailable as exc:
        st.error(text(lang, "store_down", reason=exc))
        return
    for row in shown:
        st.session_state.pop(f"rv-{row.record.id}", None)
    st.session_state.pop(DATA_KEY, None)
    st.session_state["review-notice"] = text(
        lang, "review_done", approved=len(shown) - len(marked), rejected=len(marked)
    )
    st.rerun()


@st.cache_data(max_entries=2000, show_spinner=False)
def _thumbnail(location: str, key: str) -> bytes:
    """A stored drawing (never changes: keys are fixed by the record id)."""
    return resources.feedback_store().get(key)


def _caption(lang: str, record: FeedbackRecord) -> str:
    """The label, the model's probability for it, and what the model read when that was
    something else: a label outside the model's top-k shows "?" and, beside it, the reading
    that makes a wrong label plain ("read as х 98%")."""
    prob = record.label_probability
    shown = "?" if prob is None else f"{prob:.0%}"
    caption = f"{record.text} · {text(lang, 'review_probability', p=shown)}"
    if record.predicted and record.predicted != record.label:
        read = record.predicted.upper() if record.predicted_uppercase else record.predicted
        caption += " · " + text(lang, "review_read", c=read, p=f"{record.probability:.0%}")
    return caption


def _grid(lang: str, store: ObjectStore, rows: list[StoredRecord]) -> None:
    for start in range(0, len(rows), COLUMNS):
        for column, row in zip(st.columns(COLUMNS), rows[start : start + COLUMNS], strict=False):
            record = row.record
            with column:
                try:
                    st.image(_thumbnail(store.location, record.image_key), width=THUMB)
                except Exception:  # a missing image is shown as a dash
                    st.caption("—")
                st.caption(_caption(lang, record))
                st.checkbox(text(lang, "review_reject"), key=f"rv-{record.id}")
