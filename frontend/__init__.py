"""The Streamlit drawing app: canvas, live prediction, feedback, model page.

Run it with `make app` (or `python -m streamlit run frontend/app.py`). It talks to the
KServe transformer over the v2 REST protocol with httpx; no torch and no KServe server here.
"""
