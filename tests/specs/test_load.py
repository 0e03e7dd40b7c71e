"""Parsing guards: JSON/YAML errors with positions, encodings, alias bombs, odd YAML types."""

from __future__ import annotations

import pytest

from portico.specs.load import MAX_EXPANDED_NODES, SpecError, load_document


def test_json_document_is_parsed_and_text_kept() -> None:
    doc, text = load_document(b'{"openapi": "3.0.3", "info": {"title": "t"}}')
    assert doc == {"openapi": "3.0.3", "info": {"title": "t"}}
    assert text == '{"openapi": "3.0.3", "info": {"title": "t"}}'


def test_utf8_bom_is_accepted() -> None:
    doc, text = load_document('\ufeff{"title": "caf\u00e9"}'.encode())
    assert doc == {"title": "caf\u00e9"}
    assert not text.startswith("\ufeff")


def test_non_utf8_bytes_are_rejected() -> None:
    with pytest.raises(SpecError, match="not UTF-8 text: invalid byte at offset 10"):
        load_document(b'{"title": \xff}')


def test_broken_json_names_line_and_column() -> None:
    with pytest.raises(SpecError, match=r"^not valid JSON or YAML: line 3, column 3: Expecting ','"):
        load_document(b'{\n  "openapi": "3.0.3"\n  "info": {}\n}')


def test_broken_yaml_names_line() -> None:
    raw = b"openapi: 3.0.3\ninfo:\n  title: [unclosed\npaths: {}\n"
    with pytest.raises(SpecError, match=r"^not valid JSON or YAML: line \d+, column \d+: "):
        load_document(raw)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"- a\n- b\n", "not a list"),
        (b"just a string", "not a str"),
        (b"~", "not an empty document"),
    ],
)
def test_top_level_must_be_a_mapping(raw: bytes, problem: str) -> None:
    with pytest.raises(SpecError) as info:
        load_document(raw)
    assert problem.removeprefix("not ") in str(info.value)


def test_yaml_dates_stay_strings_and_keys_become_strings() -> None:
    doc, _ = load_document(b"info:\n  version: 2024-01-01\nresponses:\n  200: {description: ok}\n  true: x\n")
    assert doc == {
        "info": {"version": "2024-01-01"},
        "responses": {"200": {"description": "ok"}, "true": "x"},
    }


def test_yaml_binary_values_are_rejected_with_location() -> None:
    with pytest.raises(SpecError, match=r"^info.logo: unsupported YAML value of type bytes"):
        load_document(b"info:\n  logo: !!binary aGVsbG8=\n")


def test_small_anchor_reuse_is_fine() -> None:
    doc, _ = load_document(b"a: &x {type: string}\nb: *x\nc: *x\n")
    assert doc["b"] == doc["c"] == {"type": "string"}
    assert doc["b"] is not doc["c"]  # expanded into independent copies


def test_billion_laughs_is_rejected_quickly() -> None:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} [{refs}]")
    raw = "\n".join(lines).encode()
    assert len(raw) < 1000
    with pytest.raises(SpecError, match=f"expands to more than {MAX_EXPANDED_NODES} nodes"):
        load_document(raw)


def test_recursive_alias_is_rejected() -> None:
    with pytest.raises(SpecError, match="recursive YAML alias"):
        load_document(b"a: &a [1, *a]\n")


def test_deeply_nested_documents_are_rejected() -> None:
    with pytest.raises(SpecError, match="nested"):
        load_document(b"{" + b'"a": {' * 300 + b"}" * 301)
    with pytest.raises(SpecError, match="nested too deeply"):
        load_document(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize(("written", "version"), [("1.10", "1.10"), ("2", "2"), ("1.0", "1.0"), ("'1.10'", "1.10"),
                                                  ("v1", "v1"), ("1e3", "1e3")])
def test_yaml_info_version_is_kept_as_written(written: str, version: str) -> None:
    data, _ = load_document(f"openapi: 3.0.3\ninfo:\n  title: T\n  version: {written}\npaths: {{}}\n".encode())
    assert data["info"]["version"] == version
    assert data["openapi"] == "3.0.3"


def test_numbers_elsewhere_stay_numbers() -> None:
    data, _ = load_document(b"openapi: 3.0.3\ninfo: {title: T, version: 1.10, x-rate: 1.10}\npaths: {}\n")
    assert data["info"] == {"title": "T", "version": "1.10", "x-rate": 1.1}
