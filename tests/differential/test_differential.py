"""Differential test: every scenario runs against Temporal's dev server (the oracle) and against
the target server (SUNDIAL_TEST_TARGET); their event-type sequences and results must match.

Temporal's observed outputs are kept in expected_temporal.json. Set SUNDIAL_DIFF_RECORD=1 to
rewrite it; otherwise the oracle's live output is also checked against it."""
import json
import os

import pytest

from rawclient import Raw
from scenarios import SCENARIOS

EXPECTED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "expected_temporal.json")
_recorded = {}


def _load():
    if os.path.exists(EXPECTED):
        with open(EXPECTED) as f:
            return json.load(f)
    return {}


def _canon(x):
    return json.loads(json.dumps(x))  # tuples → lists, as stored in JSON


@pytest.fixture(scope="session")
def recorded():
    data = _load()
    yield data
    if os.environ.get("SUNDIAL_DIFF_RECORD"):
        data.update(_recorded)
        with open(EXPECTED, "w") as f:
            json.dump(dict(sorted(data.items())), f, indent=1, sort_keys=True)
            f.write("\n")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name, sides, recorded):
    oracle, target = sides
    fn = SCENARIOS[name]
    want = _canon(oracle.lt.run(fn(Raw(oracle.client, "temporal")), 120))
    got = _canon(target.lt.run(fn(Raw(target.client, target.label)), 120))
    _recorded[name] = want
    if not os.environ.get("SUNDIAL_DIFF_RECORD") and name in recorded:
        assert want == recorded[name], f"Temporal's behaviour changed from the recording for {name}"
    want = {k: v for k, v in want.items() if not k.startswith("_")}
    got = {k: v for k, v in got.items() if not k.startswith("_")}
    assert got == want, f"{name}: target differs from Temporal\n  temporal: {want}\n  target:   {got}"
