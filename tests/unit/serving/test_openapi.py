"""The OpenAPI document matches the API: a bounded schemathesis run, every check, in-process (no Serve cluster).

The app under test is the FastAPI app the ``Recommender`` deployment serves (taken from Serve's ingress wrapper,
routes already rewritten by Serve for the class), answering through a plain :class:`Recommender` on a planted run
directory; Serve's replica context is replaced so each route gets that instance, as in a replica.
"""

from __future__ import annotations

import json
import types

import pytest
from fastapi import FastAPI

from graphrec_ray.serving.config import ServeConfig
from serve_app.collocated import Collocated, Recommender

from .planted import RANKER, make_run_dir

schemathesis = pytest.importorskip("schemathesis", reason="dev dependency (pip install -e .[dev])")

TOKEN = "s3cret"
MAX_EXAMPLES = 60  # per operation and phase: ~400 requests, ~10 s on one core


def served_app(deployment) -> FastAPI:
    """The FastAPI app a ``@serve.ingress`` deployment serves (a copy frozen in its wrapper's constructor)."""
    cells = deployment.func_or_class.__init__.__closure__ or ()
    (app,) = [c.cell_contents for c in cells if isinstance(c.cell_contents, FastAPI)]
    return app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    root = tmp_path_factory.mktemp("runs")
    run = make_run_dir(root / "v1")
    front = Recommender(ServeConfig(ranker_loader=RANKER, reload_token=TOKEN, reload_root=str(root)),
                        str(run.run_dir))
    import ray.serve

    mp = pytest.MonkeyPatch()
    mp.setattr(ray.serve, "get_replica_context", lambda: types.SimpleNamespace(servable_object=front))
    yield served_app(Collocated)
    mp.undo()


def test_document_says_what_the_handlers_do(app: FastAPI) -> None:
    """Regression (issue 13, item 8): the document listed FastAPI's 422 "Validation Error" (never sent: errors
    are 400s), no 400s at all, /metrics as application/json, and the internal `self` as a query parameter."""
    from fastapi.testclient import TestClient

    doc = TestClient(app).get("/openapi.json").json()
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    assert set(ops) >= {("GET", "/recommend/{user_id}"), ("GET", "/health"), ("GET", "/metrics"), ("POST", "/reload")}
    text = json.dumps(doc)
    assert "HTTPValidationError" not in text and '"self"' not in text
    rec = ops[("GET", "/recommend/{user_id}")]
    assert "422" not in rec["responses"] and "400" in rec["responses"]
    k = next(p for p in rec["parameters"] if p["name"] == "k")["schema"]
    assert (k["type"], k["minimum"], k["maximum"]) == ("integer", 1, 100)
    assert list(ops[("GET", "/metrics")]["responses"]["200"]["content"]) == ["text/plain"]
    assert set(ops[("POST", "/reload")]["responses"]) == {"200", "400", "401", "403", "422", "503"}
    assert ops[("POST", "/reload")]["security"] == [{"ReloadToken": []}]
    assert doc["components"]["securitySchemes"]["ReloadToken"]["name"] == "X-Reload-Token"


def test_both_topologies_document_the_same_api() -> None:
    from serve_app.deployments import Ingress
    from serve_app.openapi import openapi_document

    cfg = ServeConfig()
    a, b = (openapi_document(served_app(d), cfg) for d in (Collocated, Ingress))
    a["info"].pop("title"), b["info"].pop("title")
    assert a == b


@pytest.mark.slow
def test_schemathesis_finds_no_disagreement(app: FastAPI) -> None:
    """Every schemathesis check over every phase (examples, coverage, fuzzing), bounded by MAX_EXAMPLES.

    Found before the fixes: 500 for a NUL byte in /reload's run_dir, FastAPI's {"detail"} bodies for an unparsable
    body (not the documented {"error", "status"}), /feedback taking "clicked": 1 as true.
    """
    from schemathesis.checks import CHECKS, load_all_checks
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import events, from_schema

    load_all_checks()
    checks = {name: {"enabled": True} for name in CHECKS.get_all_names()}
    # well-formed bodies naming a run dir / item the server does not have are 400s by design
    not_here = ["2xx", "400", "401", "403"]
    config = SchemathesisConfig.from_dict({
        "seed": 13,
        "generation": {"max-examples": MAX_EXAMPLES},
        "checks": {**checks, "max_response_time": 5.0},
        "auth": {"openapi": {"ReloadToken": {"api_key": TOKEN}}},
        "operations": [{"include-path": path, "checks": {"positive_data_acceptance": {"expected-statuses": not_here}}}
                       for path in ("/reload", "/feedback")],
    })
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    requests, ran, failures, errors = 0, set(), [], []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            requests += len(event.recorder.interactions)
            for case_id, results in event.recorder.checks.items():
                for r in results:
                    ran.add(r.name)
                    if r.failure_info is not None:
                        case = event.recorder.cases[case_id].value
                        failures.append(f"{case.operation.label}: {r.name}: {r.failure_info.failure.title} "
                                        f"({r.failure_info.failure.message[:200]!r})")
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            errors.append(str(getattr(event, "info", event))[:300])
    assert not errors, errors[:5]
    assert not failures, "\n".join(sorted(set(failures))[:20])
    assert requests >= 300, requests  # bounded, not vacuous
    assert {"not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
            "negative_data_rejection", "positive_data_acceptance"} <= ran, ran
