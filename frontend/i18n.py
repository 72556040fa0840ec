"""Every string the app shows, in Ukrainian and English.

`text(lang, key, **values)` formats one string. Both languages must have the same keys (a unit
test checks it), so switching language never shows a raw key.
"""

from __future__ import annotations

LANGUAGES: dict[str, str] = {"uk": "Українська", "en": "English"}
DEFAULT_LANGUAGE = "uk"

TEXT: dict[str, dict[str, str]] = {
    "uk": {
        "app_title": "Буква: розпізнавання рукописних літер",
        "language": "Мова · Language",
        "page_draw": "Малювати",
        "page_model": "Модель",
        "page_monitoring": "Моніторинг",
        "draw_title": "Намалюйте українську літеру або цифру",
        "draw_help": "Одна літера чи цифра на полотні. Велику літеру пишіть від нижньої лінії "
        "до верхньої, малу — до середньої. Відповідь з'являється, щойно ви відпускаєте мишу "
        "чи палець.",
        "undo": "Скасувати",
        "undo_hint": "Скасувати останній штрих (Ctrl+Z)",
        "clear": "Стерти все",
        "canvas": "Полотно для малювання",
        "restored": "Малюнок відновлено після перезавантаження сторінки.",
        "resending": "Надсилаю малюнок ще раз…",
        "nothing_drawn": "Нічого не намальовано.",
        "mode": "Що ви малюєте",
        "mode_anything": "Будь-що",
        "mode_letters": "Літери",
        "mode_digits": "Цифри",
        "or": "чи",
        "twin_note": "Схоже і на «{first}», і на «{second}». Виберіть угорі «Літери» чи "
        "«Цифри», і модель відповість напевно.",
        "prediction": "Відповідь моделі",
        "case_upper": "Велика літера ({p:.0%}). Велику пишуть до верхньої лінії.",
        "case_lower": "Мала літера ({p:.0%}). Малу пишуть до середньої лінії.",
        "case_uncertain": "Регістр непевний: велика {up:.0%}, мала {low:.0%}. Велика сягає "
        "верхньої лінії, мала — середньої.",
        "case_unknown": "Регістр: модель не вміє розрізняти його для цієї літери.",
        "case_digit": "Цифра: регістру немає.",
        "served_by": "Відповідає модель версії {version}.",
        "preview": "Що бачить модель (28×28)",
        "service_down": "Сервіс розпізнавання недоступний ({url}). Спробуйте ще раз за хвилину: "
        "сторінка відновиться, щойно він запрацює.",
        "service_error": "Сервіс розпізнавання не зміг обробити малюнок: {reason}",
        "retry": "Спробувати ще раз",
        "bad_drawing": "Цей малюнок не вдалося прочитати: {reason}",
        "model_blank": "Модель не побачила чорнила на малюнку.",
        "feedback_title": "Правильно? Підтвердьте або виберіть правильний символ",
        "feedback_char": "Символ",
        "feedback_case": "Регістр",
        "upper": "велика",
        "lower": "мала",
        "save": "Зберегти",
        "saved": "Дякуємо! Збережено як «{text}» — це стане навчальними даними.",
        "queued": "Сховище відгуків недоступне: відгук «{text}» збережено локально й буде "
        "надіслано, щойно сховище запрацює (у черзі: {pending}).",
        "save_failed": "Не вдалося зберегти відгук: {reason}",
        "pending_note": "Відгуків у черзі на надсилання: {pending}.",
        "model_title": "Модель-чемпіон",
        "model_version": "Версія",
        "served_version": "Версія, яку обслуговує сервіс",
        "version_tags": "Теги версії в реєстрі (метрики, коміт, дані)",
        "unknown": "невідомо",
        "metrics": "Тестові метрики",
        "no_metrics": "Метрик ще немає (запустіть `make repro`).",
        "metrics_from_registry": "Тестові метрики версії {version} з її тегів у реєстрі.",
        "metrics_note": "Точність на матеріалі, якого навчання не бачило, з 95% інтервалом "
        "Вілсона; combined — усі набори разом.",
        "model_card": "Картка моделі: призначення, дані та ліцензії, помилки, обмеження",
        "confusion": "Матриця помилок",
        "no_confusion": "Матриці помилок ще немає.",
        "feedback_counts": "Зібрані відгуки за символами",
        "learned_from": "Перевірені малюнки, з яких навчався чемпіон",
        "no_feedback": "Відгуків ще немає.",
        "store_down": "Сховище відгуків недоступне: {reason}",
        "store_config": "Сховище відгуків налаштовано неправильно (BUKVA_FEEDBACK_URI): {reason}",
        "total": "Усього: {n}",
        "count": "кількість",
        "character": "символ",
        "rate_limited": "Не збережено: за останню хвилину ви зберегли {count} малюнків, а можна "
        "{limit} на хвилину — щоб навчальні дані не залило однією рукою. Спробуйте за {wait} с.",
        "outbox_full": "Не збережено: {reason}. Спробуйте, коли сховище відгуків запрацює.",
        "refused": "Цей малюнок не прийнято й не збережено: {reason}",
        "page_collect": "Збирати",
        "collect_title": "Допоможіть моделі: намалюйте, що вона просить",
        "collect_help": "Модель просить символи, які розпізнає найгірше і яких ще мало у "
        "відгуках. Намалюйте саме цей символ і натисніть «Зберегти».",
        "collect_prompt": "Намалюйте: {char}",
        "collect_upper": "велику літеру",
        "collect_lower": "малу літеру",
        "collect_digit": "цифру",
        "collect_skip": "Інший символ",
        "collect_saved": "Дякуємо! «{text}» збережено. Наступний символ:",
        "collect_nothing": "Полотно порожнє: спершу намалюйте символ.",
        "collect_count": "Зібрано в цьому сеансі: {n}",
        "page_review": "Перевірка",
        "review_title": "Перевірка відгуків перед навчанням",
        "review_help": "Нові малюнки за символами; спершу ті, чий підпис модель вважала "
        "найменш імовірним. Позначте хибні й натисніть «Схвалити решту»: до навчання "
        "потрапляють лише схвалені (params.yaml ingest.feedback_reviewed_only).",
        "review_empty": "Нових відгуків немає: усе перевірено.",
        "review_reject": "Хибний",
        "review_approve_rest": "Схвалити решту ({n}), відхилити позначені",
        "review_refresh": "Оновити",
        "review_done": "Схвалено: {approved}, відхилено: {rejected}.",
        "review_counts": "Нових: {new} · схвалених: {approved} · відхилених: {rejected}",
        "review_unreadable": "Не вдалося прочитати записів: {n} (наприклад, {key}: {reason})",
        "review_probability": "модель: {p}",
        "review_read": "прочитала {c} ({p})",
    },
    "en": {
        "app_title": "Bukva: hand-drawn letter recognition",
        "language": "Мова · Language",
        "page_draw": "Draw",
        "page_model": "Model",
        "page_monitoring": "Monitoring",
        "draw_title": "Draw a Ukrainian letter or a digit",
        "draw_help": "One letter or digit on the canvas. Write a capital from the bottom line "
        "to the top one, a small letter to the middle one. The answer appears as soon as you "
        "lift the mouse button or your finger.",
        "undo": "Undo",
        "undo_hint": "Undo the last stroke (Ctrl+Z)",
        "clear": "Clear",
        "canvas": "Drawing canvas",
        "restored": "The drawing was restored after the page reloaded.",
        "resending": "Sending the drawing again…",
        "nothing_drawn": "Nothing drawn yet.",
        "mode": "What you draw",
        "mode_anything": "Anything",
        "mode_letters": "Letters",
        "mode_digits": "Digits",
        "or": "or",
        "twin_note": "It looks like both “{first}” and “{second}”. Choose Letters or Digits "
        "above and the model will say which.",
        "prediction": "The model's answer",
        "case_upper": "Capital letter ({p:.0%}). Capitals go up to the top line.",
        "case_lower": "Small letter ({p:.0%}). Small letters go up to the middle line.",
        "case_uncertain": "Case uncertain: capital {up:.0%}, small {low:.0%}. A capital "
        "reaches the top line, a small letter the middle one.",
        "case_unknown": "Case: the model cannot tell it for this letter.",
        "case_digit": "A digit: no case.",
        "served_by": "Answered by model version {version}.",
        "preview": "What the model sees (28×28)",
        "service_down": "The recognition service is unreachable ({url}). Try again in a "
        "minute: the page recovers as soon as it is back.",
        "service_error": "The recognition service could not process the drawing: {reason}",
        "retry": "Try again",
        "bad_drawing": "This drawing could not be read: {reason}",
        "model_blank": "The model saw no ink in the drawing.",
        "feedback_title": "Is it right? Confirm or pick the right character",
        "feedback_char": "Character",
        "feedback_case": "Case",
        "upper": "capital",
        "lower": "small",
        "save": "Save",
        "saved": "Thank you! Saved as “{text}”: it becomes training data.",
        "queued": "The feedback store is unreachable: “{text}” is kept locally and will be "
        "sent as soon as the store is back (queued: {pending}).",
        "save_failed": "The feedback could not be saved: {reason}",
        "pending_note": "Feedback waiting to be sent: {pending}.",
        "model_title": "Champion model",
        "model_version": "Version",
        "served_version": "Version the service serves",
        "version_tags": "The version's registry tags (metrics, commit, data)",
        "unknown": "unknown",
        "metrics": "Test metrics",
        "no_metrics": "No metrics yet (run `make repro`).",
        "metrics_from_registry": "Test metrics of version {version}, from its registry tags.",
        "metrics_note": "Accuracy on material training never saw, with its 95% Wilson "
        "interval; combined is every set together.",
        "model_card": "Model card: intended use, data and licences, confusions, limits",
        "confusion": "Confusion matrix",
        "no_confusion": "No confusion matrix yet.",
        "feedback_counts": "Feedback collected per character",
        "learned_from": "Reviewed drawings the champion learned from",
        "no_feedback": "No feedback yet.",
        "store_down": "The feedback store is unreachable: {reason}",
        "store_config": "The feedback store is misconfigured (BUKVA_FEEDBACK_URI): {reason}",
        "total": "Total: {n}",
        "count": "count",
        "character": "character",
        "rate_limited": "Not saved: you saved {count} drawings in the last minute and the limit "
        "is {limit} a minute, so that no one hand floods the training data. Try again in "
        "{wait} s.",
        "outbox_full": "Not saved: {reason}. Try again once the feedback store is back.",
        "refused": "This drawing was refused and nothing was stored: {reason}",
        "page_collect": "Collect",
        "collect_title": "Help the model: draw what it asks for",
        "collect_help": "The model asks for the characters it recognises worst and has the "
        "least feedback for. Draw exactly that character and press “Save”.",
        "collect_prompt": "Draw: {char}",
        "collect_upper": "capital letter",
        "collect_lower": "small letter",
        "collect_digit": "digit",
        "collect_skip": "Another character",
        "collect_saved": "Thank you! “{text}” is saved. Next one:",
        "collect_nothing": "The canvas is empty: draw the character first.",
        "collect_count": "Collected in this session: {n}",
        "page_review": "Review",
        "review_title": "Review feedback before it trains",
        "review_help": "New drawings by character; first those whose label the model found "
        "least likely. Mark the wrong ones and press “Approve the rest”: only approved "
        "drawings train (params.yaml ingest.feedback_reviewed_only).",
        "review_empty": "No new feedback: everything is reviewed.",
        "review_reject": "Wrong",
        "review_approve_rest": "Approve the rest of these {n}, reject the ticked",
        "review_refresh": "Refresh",
        "review_done": "Approved: {approved}, rejected: {rejected}.",
        "review_counts": "New: {new} · approved: {approved} · rejected: {rejected}",
        "review_unreadable": "Records that could not be read: {n} (e.g. {key}: {reason})",
        "review_probability": "model: {p}",
        "review_read": "read as {c} ({p})",
    },
}


def text(lang: str, key: str, **values: object) -> str:
    """The string `key` in `lang` (falling back to the default language), formatted."""
    table = TEXT.get(lang, TEXT[DEFAULT_LANGUAGE])
    template = table.get(key) or TEXT[DEFAULT_LANGUAGE][key]
    return template.format(**values) if values else template
