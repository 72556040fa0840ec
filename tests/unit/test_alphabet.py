"""The class order is a contract between training, serving and the app."""

import pytest

from bukva import alphabet


def test_digits_come_first_then_letters_in_alphabetical_order():
    assert alphabet.NUM_CLASSES == 43
    assert alphabet.CLASSES[:10] == tuple("0123456789")
    assert "".join(alphabet.CLASSES[10:]) == "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя"
    assert len(set(alphabet.CLASSES)) == 43


def test_index_of_accepts_uppercase_and_rejects_strangers():
    assert alphabet.index_of("0") == 0
    assert alphabet.index_of("а") == 10
    assert alphabet.index_of("Я") == 42
    with pytest.raises(KeyError, match="'ы'"):
        alphabet.index_of("ы")


def test_digits_never_have_case_and_every_letter_does():
    assert not any(alphabet.has_case(d) for d in alphabet.DIGITS)
    assert set(alphabet.CASED_LETTERS) == set(alphabet.LETTERS)
    assert len(alphabet.SCANNED_CAPITALS) == 16  # Rukopys scans hold capitals of 16 letters
    assert set(alphabet.LETTERS) >= alphabet.SCANNED_CAPITALS
    assert alphabet.display("а", True) == "А"
    assert alphabet.display("ш", True) == "Ш"  # block-letter data gives every capital
    assert alphabet.display("ш", False) == "ш"
    assert alphabet.display("7", True) == "7"


def test_core_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys, bukva.alphabet, bukva.preprocess, bukva.settings; "
        "print(sorted(m for m in ('torch', 'kserve', 'mlflow', 'streamlit') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
