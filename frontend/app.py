"""Entry point: `streamlit run frontend/app.py` (or `make app`).

Sets up the page, the language toggle and the pages (draw, collect, review, model,
monitoring). Streamlit runs this file as a script with only `frontend/` on the path, so the
checkout's root is added first to import the `frontend` package the same way tests do.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path


def _main() -> None:
    import streamlit as st

    from bukva.settings import SettingsError
    from frontend import collect, draw_page, model_card, monitoring, resources, review
    from frontend.i18n import DEFAULT_LANGUAGE, LANGUAGES, text

    st.set_page_config(page_title="Bukva", page_icon=":material/draw:", layout="wide")
    try:
        resources.settings()
    except SettingsError as exc:  # a bad environment variable: say which, no stack trace
        st.error(str(exc))
        st.stop()
    st.html(f"<style>{draw_page.ANSWER_CSS}</style>")
    with st.sidebar:
        # `?lang=en` in the URL picks the language too (and the toggle keeps it there).
        lang = st.segmented_control(
            text(DEFAULT_LANGUAGE, "language"),  # the same words in both languages
            list(LANGUAGES),
            default=DEFAULT_LANGUAGE,
            required=True,
            format_func=LANGUAGES.get,
            key="lang",
            bind="query-params",
        )
    st.title(text(lang, "app_title"))
    resources.metrics()  # starts this process's /metrics endpoint (BUKVA_METRICS_PORT) once
    pages = [
        st.Page(
            functools.partial(page.render, lang),
            title=text(lang, f"page_{url_path}"),
            icon=f":material/{icon}:",
            url_path=url_path,
            default=url_path == "draw",
        )
        for page, url_path, icon in (
            (draw_page, "draw", "draw"),
            (collect, "collect", "edit_note"),
            (review, "review", "fact_check"),
            (model_card, "model", "monitoring"),
            (monitoring, "monitoring", "query_stats"),
        )
    ]
    st.navigation(pages).run()


if __name__ == "__main__":
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    _main()
