"""400 messages say what was wrong with the input, never Python internals or whether a server path exists."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from graphrec_ray.serving.config import ServeConfig
from graphrec_ray.serving.request_path import parse_k, parse_user_id
from serve_app.collocated import Recommender

from .planted import RANKER, make_run_dir

INTERNALS = ("invalid literal", "int()", "Traceback", "Exceeds the limit", "Error:", "object has no", "NoneType",
             "KeyError", "JSONDecodeError", "Expecting value")


@pytest.mark.parametrize("text", ["²", "--5", "1-2", "٣", "1e3", "0x10", "", " ", "-", "9" * 5000, "１２"])
def test_bad_user_ids_and_k_get_the_fixed_message(text: str) -> None:
    """Regression (issue 13, item 8): '²' and '--5' passed the isdigit() check and int() answered
    "invalid literal for int() with base 10: '²'"; 5,000 digits answered int()'s digit-limit message."""
    for parse, needle in ((parse_user_id, "user_id"), (lambda t: parse_k(t, 10, 100), "k must be")):
        with pytest.raises(ValueError) as err:
            parse(text)
        msg = str(err.value)
        assert needle in msg and not any(s in msg for s in INTERNALS), msg
        assert len(msg) < 120  # a long input is cut, not echoed whole


def test_good_inputs_still_parse() -> None:
    assert parse_user_id(" 42 ") == 42 and parse_user_id("-7") == -7 and parse_user_id("0009") == 9
    assert parse_user_id(str(2**63 - 1)) == 2**63 - 1
    with pytest.raises(ValueError, match="64-bit"):
        parse_user_id(str(2**63))
    assert parse_k(None, 10, 100) == 10 and parse_k("100", 10, 100) == 100 and parse_k("007", 10, 100) == 7
    for bad in ("0", "101", "-1", "1" * 30):
        with pytest.raises(ValueError, match=r"k must be in \[1, 100\]"):
            parse_k(bad, 10, 100)


class _Request:
    def __init__(self, raw: bytes, token: str | None = "s3cret") -> None:
        self.headers = {"X-Reload-Token": token} if token else {}
        self._raw = raw

    async def json(self) -> Any:
        return json.loads(self._raw)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    root = tmp_path_factory.mktemp("runs")
    run = make_run_dir(root / "v1")
    return Recommender(ServeConfig(ranker_loader=RANKER, reload_token="s3cret", reload_root=str(root)),
                       str(run.run_dir))


def test_recommend_400s_are_plain_messages(front: Recommender) -> None:
    for user, k in (("²", None), ("5", "²"), ("--5", None), ("5", "--1"), ("9" * 5000, None), ("5", "9" * 5000)):
        r = asyncio.run(front.recommend(user, k))
        body = json.loads(r.body)
        assert r.status_code == 400 and body["status"] == 400
        assert not any(s in body["error"] for s in INTERNALS), body


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"run_dir": 5}', b'{"run_dir": ""}', b'"x"', b"null",
                                 b'{"dir": "v1"}'])
def test_reload_bad_bodies_get_one_fixed_message(front: Recommender, raw: bytes) -> None:
    r = asyncio.run(front.reload(_Request(raw)))
    body = json.loads(r.body)
    assert r.status_code == 400 and body["error"] == 'body must be JSON {"run_dir": "<run directory under the reload root>"}'


def test_reload_does_not_say_whether_a_server_path_exists(front: Recommender, tmp_path: Path) -> None:
    """The same answer for a path that exists (outside the root), one that does not, and a non-run folder."""
    answers = set()
    # "v1\x00": a NUL byte made Path.resolve() raise ValueError, answered 500 (found by schemathesis)
    for path in ("/etc", "/nonexistent/x", str(tmp_path), "../../etc/passwd", "v9", "v1\x00"):
        r = asyncio.run(front.reload(_Request(json.dumps({"run_dir": path}).encode())))
        assert r.status_code == 400
        answers.add(r.body)
        assert path.encode() not in r.body and b"/" not in json.loads(r.body)["error"].encode()
    assert len(answers) == 1
