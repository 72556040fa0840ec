"""The app's pure parts: texts in both languages, the drawing and its preview, the model page's
readers, the metrics; and the app itself run headless with Streamlit's AppTest."""

from __future__ import annotations

import io
import json
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from prometheus_client import generate_latest
from streamlit.testing.v1 import AppTest

from bukva.geometry import BRUSH_WIDTH, CANVAS_SIDE
from bukva.preprocess import ImageError
from frontend import answer, draw_page, model_card
from frontend.counters import FrontendMetrics
from frontend.i18n import TEXT, text

ROOT = Path(__file__).resolve().parents[2]


def canvas_png(strokes: list[tuple[int, int, int, int]]) -> bytes:
    """A white 280x280 canvas with black strokes, as the app's canvas sends it."""
    image = Image.new("RGBA", (CANVAS_SIDE, CANVAS_SIDE), "white")
    pen = ImageDraw.Draw(image)
    for stroke in strokes:
        pen.line(stroke, fill="black", width=BRUSH_WIDTH)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_both_languages_have_every_text_with_the_same_placeholders() -> None:
    assert TEXT["uk"].keys() == TEXT["en"].keys()
    for key in TEXT["uk"]:
        assert placeholders(TEXT["uk"][key]) == placeholders(TEXT["en"][key]), key
    assert text("en", "saved", text="Ж") == "Thank you! Saved as “Ж”: it becomes training data."
    assert text("xx", "save") == TEXT["uk"]["save"]  # unknown language: the default


def test_a_drawing_is_known_by_its_png_and_not_decoded_to_be_answered() -> None:
    png = canvas_png([(140, 40, 140, 240)])
    drawing = draw_page.read_drawing(png)
    assert drawing is not None and drawing.png is png
    assert drawing.digest == draw_page.read_drawing(png).digest
    assert drawing.digest != draw_page.read_drawing(canvas_png([(40, 140, 240, 140)])).digest
    # the transformer reads it (and refuses what is not an image): the app passes it on as is
    assert draw_page.read_drawing(b"not a png").png == b"not a png"
    assert draw_page.read_drawing(None) is None and draw_page.read_drawing(b"") is None


def test_the_save_paths_decode_the_drawing_and_find_blank_ones() -> None:
    image = draw_page.read_image(canvas_png([(140, 40, 140, 240)]))
    assert image is not None and image.size == (CANVAS_SIDE, CANVAS_SIDE)
    assert draw_page.read_image(canvas_png([])) is None  # no ink: nothing to store
    with pytest.raises(ImageError):
        draw_page.read_image(b"not a png")


def test_the_preview_is_the_transformers_model_input_shown_sharp() -> None:
    seen = np.zeros((28, 28), dtype=np.float32)
    seen[4:24, 12:16], seen[0, 0] = 1.0, 0.5
    preview = draw_page.preview_image(seen)
    assert preview.size == (28, 28) and preview.mode == "L"
    pixels = np.asarray(preview)
    assert pixels[10, 13] == 255 and pixels[0, 0] == 127 and pixels[10, 0] == 0
    uri = answer.preview_uri(preview)
    assert uri.startswith("data:image/png;base64,")
    assert f"src='{uri}' width='{answer.PREVIEW_SIDE}'" in answer.answer_html(
        "en", "ab", None, {}, uri, {}
    )


def test_stroke_width_is_about_a_fifteenth_of_the_canvas() -> None:
    assert 12 <= CANVAS_SIDE / BRUSH_WIDTH <= 18


def test_model_page_readers_cope_with_missing_and_present_reports(tmp_path: Path) -> None:
    assert model_card.read_metrics(tmp_path) == {}
    assert model_card.confusion_source(tmp_path) is None

    reports = tmp_path / "reports"
    (reports / "plots").mkdir(parents=True)
    (reports / "metrics.json").write_text("{not json")
    assert model_card.read_metrics(tmp_path) == {}
    (reports / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.9, "top3": [1, 2]}}))
    assert model_card.read_metrics(tmp_path) == {
        "test.accuracy": 0.9,
        "test.top3.0": 1,
        "test.top3.1": 2,
    }

    (reports / "plots" / "confusion.csv").write_text("actual,predicted\nа,а\nа,а\nа,б\n")
    assert model_card.confusion_source(tmp_path).name == "confusion.csv"
    pairs = model_card.confusion_pairs(reports / "plots" / "confusion.csv")
    assert {(p["actual"], p["predicted"]): p["count"] for p in pairs} == {
        ("а", "а"): 2,
        ("а", "б"): 1,
    }
    Image.new("L", (4, 4)).save(reports / "plots" / "confusion_matrix.png")
    assert model_card.confusion_source(tmp_path).name == "confusion_matrix.png"  # images first
    # What evaluate writes: the scanned split's label matrix wins over the case matrix and
    # over the drawn sets' matrices in subfolders.
    for folder in ("", "block", "canvas"):
        (reports / "plots" / folder).mkdir(exist_ok=True)
        for name in ("confusion_case.png", "confusion_labels.png"):
            Image.new("L", (4, 4)).save(reports / "plots" / folder / name)
    assert model_card.confusion_source(tmp_path) == reports / "plots" / "confusion_labels.png"


def test_model_page_shows_each_figure_with_its_interval_and_images(tmp_path: Path) -> None:
    report = {
        "label_accuracy": 0.9413,
        "label_accuracy_interval": [0.9274, 0.9527],
        "count": 1346,
        "letters_accuracy": 0.9252,
        "letters_accuracy_interval": [0.871, 0.9577],
        "letters_count": 147,
        "top3_accuracy": 0.9955,
        "case_accuracy": float("nan"),
        "combined": {"label_accuracy": 0.9275, "label_accuracy_interval": [0.9188, 0.9352]}
        | {"count": 3832},
    }
    rows = model_card.figure_rows(report)
    assert rows[0] == {
        "set": "scanned",
        "figure": "letters",
        "accuracy": "92.5%",
        "95% interval": "87.1-95.8%",
        "images": 147,
    }
    assert {"set": "combined", "figure": "label", "accuracy": "92.8%"}.items() <= rows[-1].items()
    assert rows[-1]["95% interval"] == "91.9-93.5%" and rows[-1]["images"] == 3832
    top3 = next(r for r in rows if r["figure"] == "top3")
    assert top3["95% interval"] == "-"  # a report without intervals still shows the figure
    assert not any(r["figure"] == "case" for r in rows)  # NaN: nothing measured
    assert model_card.read_card(tmp_path) == ""
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "model_card.md").write_text("# Model card", encoding="utf-8")
    assert model_card.read_card(tmp_path) == "# Model card"


def test_metrics_count_feedback_by_agreement_and_delivery() -> None:
    metrics = FrontendMetrics.create()
    metrics.drawings.inc()
    metrics.record_feedback(agrees=True, stored=True)
    metrics.record_feedback(agrees=False, stored=False)
    exposition = generate_latest(metrics.registry).decode()
    assert "bukva_frontend_drawings_total 1.0" in exposition
    assert 'bukva_frontend_feedback_total{agrees="true",delivery="stored"} 1.0' in exposition
    assert 'bukva_frontend_feedback_total{agrees="false",delivery="queued"} 1.0' in exposition


def test_app_starts_with_an_empty_canvas_in_both_languages(home: Path) -> None:
    app = AppTest.from_file(str(ROOT / "frontend" / "app.py"), default_timeout=60)
    app.run()
    assert not app.exception
    assert app.title[0].value == TEXT["uk"]["app_title"]
    assert [i.value for i in app.info] == [TEXT["uk"]["nothing_drawn"]]

    app.segmented_control(key="lang").set_value("en").run()
    assert not app.exception
    assert app.title[0].value == TEXT["en"]["app_title"]
    assert [i.value for i in app.info] == [TEXT["en"]["nothing_drawn"]]


@pytest.mark.parametrize(
    ("name", "value", "message", "app_runs"),
    [
        # a setting nothing runs without: the message, and nothing else of the app
        (
            "BUKVA_FEEDBACK_PER_MINUTE",
            "many",
            "BUKVA_FEEDBACK_PER_MINUTE='many': not a whole number",
            False,
        ),
        # a feedback store it cannot use: the message, and drawing still works
        ("BUKVA_FEEDBACK_URI", "gs://bucket/feedback", None, True),
    ],
    ids=["bad-setting", "misconfigured-store"],
)
def test_a_bad_setting_is_a_message_not_a_crash(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    message: str | None,
    app_runs: bool,
) -> None:
    monkeypatch.setenv(name, value)
    app = AppTest.from_file(str(ROOT / "frontend" / "app.py"), default_timeout=60)
    app.run()
    assert not app.exception
    (error,) = app.error
    assert name in error.value and value in error.value
    assert message is None or error.value == message
    if app_runs:
        assert [i.value for i in app.info] == [TEXT["uk"]["nothing_drawn"]]
    else:
        assert not app.title


def test_mode_choice_defaults_to_anything_and_is_remembered(home: Path) -> None:
    app = AppTest.from_file(str(ROOT / "frontend" / "app.py"), default_timeout=60)
    app.run()
    choice = app.segmented_control(key="mode-choice")
    assert choice.value == "anything" and app.session_state["mode"] == "anything"
    assert choice.label == TEXT["uk"]["mode"]
    assert choice.options == ["Будь-що", "Літери", "Цифри"]

    choice.set_value("digits").run()
    assert not app.exception and app.session_state["mode"] == "digits"
    app.segmented_control(key="lang").set_value("en").run()  # another rerun, another language
    choice = app.segmented_control(key="mode-choice")
    assert choice.value == "digits" and choice.label == TEXT["en"]["mode"]
    choice.set_value(None).run()  # clicking the chosen option again keeps it
    assert app.session_state["mode"] == "digits"
    assert app.segmented_control(key="mode-choice").value == "digits"


def test_model_page_renders_without_reports_or_services(home: Path) -> None:
    def page() -> None:
        from frontend import model_card

        model_card.render("en")

    app = AppTest.from_function(page, default_timeout=60)
    app.run()
    assert not app.exception
    infos = [i.value for i in app.info]
    assert TEXT["en"]["no_metrics"] in infos and TEXT["en"]["no_feedback"] in infos
    assert [m.value for m in app.metric] == [TEXT["en"]["unknown"], TEXT["en"]["unknown"]]


def test_model_page_shows_the_figures_and_the_generated_card(home: Path) -> None:
    reports = home / "reports"
    reports.mkdir()
    figures = {"label_accuracy": 0.9, "label_accuracy_interval": [0.85, 0.94], "count": 200}
    (reports / "metrics.json").write_text(json.dumps(figures | {"combined": figures}))
    card = "# Model card: bukva-cnn\n\n## Intended use\nOne character at a time.\n"
    (reports / "model_card.md").write_text(card, encoding="utf-8")

    def page() -> None:
        from frontend import model_card

        model_card.render("en")

    app = AppTest.from_function(page, default_timeout=60)
    app.run()
    assert not app.exception
    (table,) = app.dataframe
    assert list(table.value["95% interval"]) == ["85.0-94.0%", "85.0-94.0%"]
    assert list(table.value["set"]) == ["scanned", "combined"]
    (expander,) = app.expander
    assert expander.label == TEXT["en"]["model_card"]
    assert any("One character at a time." in m.value for m in expander.markdown)


def test_outbox_is_under_home_or_in_temp_when_home_is_not_writable(tmp_path: Path) -> None:
    from bukva.settings import Settings
    from frontend.resources import outbox_dir

    home = Settings.from_env({"BUKVA_HOME": str(tmp_path)})
    assert outbox_dir(home) == tmp_path / "feedback-outbox"
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a folder cannot be made inside a file: like a read-only root
    assert outbox_dir(Settings.from_env({"BUKVA_HOME": str(blocked)})).parent == Path(
        tempfile.gettempdir()
    )


def test_champion_comes_from_the_registrys_alias() -> None:
    """The page asks `bukva.registry` (MLflow's REST API; the app has no mlflow package); a
    registry it cannot ask, or one without a champion, leaves the page without one."""
    from tests.support.mlflow_rest import mlflow_rest

    champion = {
        "version": "5",
        "run_id": "r1",
        "tags": [{"key": "metric.label_accuracy", "value": "0.912000"}],
        "description": "# Model card: bukva-cnn",
    }
    with mlflow_rest([champion], {"champion": "5"}) as url:
        model_card.champion.clear()
        assert model_card.champion(url + "/") == {
            "version": "5",
            "run_id": "r1",
            "tags": {"metric.label_accuracy": "0.912000"},
            "description": "# Model card: bukva-cnn",
        }
    with mlflow_rest([champion], {}) as url:
        model_card.champion.clear()
        assert model_card.champion(url) == {}  # no champion yet
    model_card.champion.clear()
    assert model_card.champion("http://127.0.0.1:9") == {}  # nothing listens
    assert model_card.champion("sqlite:///mlruns/mlflow.db") == {}  # no server to ask
