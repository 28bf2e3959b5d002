"""Job arguments made safe to show."""

from __future__ import annotations

import json

from opentelemetry.instrumentation.saq.arguments import ArgumentPolicy


def test_secret_looking_keys_are_redacted_at_any_depth_and_case() -> None:
    policy = ArgumentPolicy()
    cleaned = policy.clean(
        {
            "user": "ada",
            "Password": "hunter2",
            "api_key": "k",
            "headers": {"Authorization": "Bearer x", "X-Auth-Token": "t", "accept": "json"},
            "session_cookie": "c",
            "client_secret": "s",
        }
    )
    assert cleaned == {
        "user": "ada",
        "Password": "[redacted]",
        "api_key": "[redacted]",
        "headers": {"Authorization": "[redacted]", "X-Auth-Token": "[redacted]", "accept": "json"},
        "session_cookie": "[redacted]",
        "client_secret": "[redacted]",
    }


def test_long_values_and_long_lists_are_cut() -> None:
    policy = ArgumentPolicy(max_length=10, max_items=2)
    cleaned = policy.clean({"body": "x" * 100, "ids": [1, 2, 3, 4]})
    assert cleaned == {"body": "x" * 9 + "…", "ids": [1, 2, "… 2 more"]}


def test_values_become_json_safe() -> None:
    policy = ArgumentPolicy()
    cleaned = policy.clean({"when": object, "ratio": float("nan"), "ok": True, "n": None})
    assert cleaned["ratio"] == "nan" and cleaned["ok"] is True and cleaned["n"] is None
    assert cleaned["when"] == "<class 'object'>"
    json.dumps(cleaned, allow_nan=False)


def test_the_secret_words_are_configurable() -> None:
    policy = ArgumentPolicy(secret_words=("iban",))
    assert policy.clean({"iban": "DE00", "password": "p"}) == {
        "iban": "[redacted]",
        "password": "p",
    }


def test_render_is_one_bounded_json_string() -> None:
    policy = ArgumentPolicy(max_length=20)
    rendered = policy.render({"token": "t", "a": 1})
    assert json.loads(rendered) == {"a": 1, "token": "[redacted]"}
    assert len(policy.render({f"k{i}": "v" * 20 for i in range(50)})) == 200
