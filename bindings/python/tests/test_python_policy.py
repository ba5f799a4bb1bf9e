"""The Python retention policy (guest-backends/retention-python) end to end:
built into a component with componentize-py, loaded by the `quire` CLI with
`--retention`, and checked against the records that survive.

Needs componentize-py in the same environment as pytest (the tests fail
without it) and a built CLI: `QUIRE_CLI`, else `<repo>/target/release/quire`.
Does not use the `quire` Python module.
"""

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
POLICY_DIR = REPO / "guest-backends" / "retention-python"
WIT = REPO / "wit" / "v0.3"
COMPONENTIZE_PY = Path(sys.executable).parent / "componentize-py"
CLI = Path(os.environ.get("QUIRE_CLI", REPO / "target" / "release" / "quire"))



@pytest.fixture(autouse=True, scope="module")
def _componentize_py_is_installed():
    # A missing tool fails the run rather than skipping it: CI must not pass without it.
    if not COMPONENTIZE_PY.exists():
        pytest.fail(f"componentize-py is not installed next to {sys.executable}: pip install componentize-py==0.25.1")

# Far enough from the cutoff (1 hour) that the seconds a test takes never matter.
OLD = -100_000.0
YOUNG = -100.0


def build_command(app_dir, output):
    """The documented build command, run from the repository root."""
    return [
        str(COMPONENTIZE_PY), "-d", "wit/v0.3", "-w", "retention-policy",
        "componentize", "-p", str(app_dir), "policy", "-o", str(output),
    ]  # fmt: skip


@pytest.fixture(scope="session")
def policy_wasm(tmp_path_factory):
    work = tmp_path_factory.mktemp("component")
    # Built from a copy: componentize-py leaves a __pycache__ beside the app.
    app_dir = work / "retention-python"
    shutil.copytree(
        POLICY_DIR, app_dir, ignore=shutil.ignore_patterns("__pycache__", "*.wasm", "bindings")
    )
    out = work / "policy.wasm"
    started = time.monotonic()
    done = subprocess.run(
        build_command(app_dir, out), cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"componentize-py failed:\n{done.stdout}\n{done.stderr}"
    print(f"built {out} ({out.stat().st_size} bytes) in {time.monotonic() - started:.1f} s")
    assert out.stat().st_size > 1_000_000, "a componentize-py component embeds CPython"
    return out


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    # One compile cache for the session: the first load compiles (seconds),
    # later ones do not. Kept out of the user's ~/.cache.
    return tmp_path_factory.mktemp("quire-cache")


def quire(cache_dir, *args, stdin=None, check=True):
    if not CLI.exists():
        pytest.fail(f"no quire CLI at {CLI}: build it (cargo build --release) or set QUIRE_CLI")
    done = subprocess.run(
        [str(CLI), *map(str, args), "--cache-dir", str(cache_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert done.returncode == 0, f"quire {' '.join(map(str, args))}:\n{done.stderr}"
    return done


def record(n, kind, store, age):
    """One record as its exact line. `age` is added to now."""
    return json.dumps(
        {"kind": kind, "system_id": store, "timestamp": round(time.time() + age, 3), "n": n},
        separators=(",", ":"),
    )


def history():
    """Thirteen records, in append order, numbered by `n`."""
    spec = [
        ("event", "a", OLD),  # 0
        ("event", "b", OLD),  # 1
        ("dead_letter", "a", OLD),  # 2
        ("event", "a", OLD),  # 3
        ("audit", "b", OLD),  # 4
        ("event", "a", OLD),  # 5
        ("dead_letter", "a", OLD),  # 6
        ("event", "b", OLD),  # 7
        ("dead_letter", "a", OLD),  # 8
        ("event", "a", OLD),  # 9
        ("event", "a", YOUNG),  # 10
        ("dead_letter", "b", YOUNG),  # 11
        ("event", "b", YOUNG),  # 12
    ]
    return [record(n, kind, store, age + n) for n, (kind, store, age) in enumerate(spec)]


def numbers(lines):
    return [json.loads(line)["n"] for line in lines]


def compact(cache_dir, policy_wasm, config, *store_args):
    done = quire(
        cache_dir, "compact", *store_args, "--retention", policy_wasm,
        "--retention-config", config, "--json",
    )  # fmt: skip
    return json.loads(done.stdout)


def read(cache_dir, *store_args):
    return quire(cache_dir, "read", *store_args).stdout.splitlines()


@pytest.mark.parametrize(
    "config, kept, describe",
    [
        # a/event: 0 3 5 9 10 -> newest two 9 10; b/event: 1 7 12 -> 7 12;
        # a/dead_letter: 2 6 8 -> 6 8; b/audit 4 and b/dead_letter 11 alone.
        (
            {"max_age_seconds": 3600, "keep_last": 2},
            [4, 6, 7, 8, 9, 10, 11, 12],
            "recent-or-last: keep records younger than 3600s and the newest 2 of every store and kind",
        ),
        # The newest of every (store, kind) pair, whatever its age.
        (
            {"keep_last": 1},
            [4, 8, 10, 11, 12],
            "recent-or-last: keep the newest 1 of every store and kind",
        ),
        # Age alone.
        (
            {"max_age_seconds": 3600},
            [10, 11, 12],
            "recent-or-last: keep records younger than 3600s",
        ),
        # Only dead letters are trimmed: a's newest (8) and b's young one (11).
        (
            {"keep_last": 1, "kinds": ["dead_letter"]},
            [0, 1, 3, 4, 5, 7, 8, 9, 10, 11, 12],
            "recent-or-last: keep the newest 1 of every store and kind "
            "(kinds dead_letter; every other kind is kept)",
        ),
    ],
)
def test_compaction_keeps_exactly_what_the_policy_says(
    tmp_path, policy_wasm, cache_dir, config, kept, describe
):
    lines = history()
    path = tmp_path / "events.ndjson"
    quire(cache_dir, "append", "--path", path, stdin="".join(line + "\n" for line in lines))
    assert read(cache_dir, "--path", path) == lines

    report = compact(cache_dir, policy_wasm, json.dumps(config), "--path", path)

    assert report["policy"] == describe
    assert (report["records_before"], report["records_after"]) == (len(lines), len(kept))
    survivors = read(cache_dir, "--path", path)
    assert numbers(survivors) == kept
    # Byte for byte what was appended, in the same order.
    assert survivors == [lines[n] for n in kept]
    assert path.read_text() == "".join(lines[n] + "\n" for n in kept)


def rotating_history():
    """Ten events in one store: with max-records=3 the rotating backend puts
    0-2 (old), 3-5 (two old, one young) and 6-8 (young) in sealed files and 9
    in the live one."""
    ages = [OLD] * 5 + [YOUNG] * 5
    return [record(n, "event", "s", age + n) for n, age in enumerate(ages)]


@pytest.mark.parametrize(
    "config, actions, kept",
    [
        # Age alone is decided from the units' time ranges where it can be:
        # 0001 dropped and 0003 kept without being read; 0002 straddles the
        # cutoff and is rewritten; the live unit is always read.
        (
            {"max_age_seconds": 3600},
            ["dropped", "rewritten", "kept", "unchanged"],
            [5, 6, 7, 8, 9],
        ),
        # With keep_last every unit is read (the newest 6 are 4-9).
        (
            {"max_age_seconds": 3600, "keep_last": 6},
            ["dropped", "rewritten", "unchanged", "unchanged"],
            [4, 5, 6, 7, 8, 9],
        ),
    ],
)
def test_rotating_units_are_planned_then_filtered(
    tmp_path, policy_wasm, cache_dir, config, actions, kept
):
    lines = rotating_history()
    store = ["--backend", "rotating", "--path", tmp_path / "data", "--option", "max-records=3"]
    quire(cache_dir, "append", *store, stdin="".join(line + "\n" for line in lines))
    inspect = quire(cache_dir, "inspect", *store).stdout
    for unit in ("events-0001", "events-0002", "events-0003", "events-0004"):
        assert unit in inspect, inspect

    report = compact(cache_dir, policy_wasm, json.dumps(config), *store)

    units = {u["unit"]: u["action"] for u in report["units"]}
    assert units == {
        f"events/events-000{i + 1}.ndjson": action for i, action in enumerate(actions)
    }
    survivors = read(cache_dir, *store)
    assert survivors == [lines[n] for n in kept]
    receipts = quire(cache_dir, "receipts", *store).stdout
    assert "events-0001" in receipts, receipts


@pytest.mark.parametrize(
    "config, problem",
    [
        ('{"keep_last": -1}', "field `keep_last` must be an integer >= 0, got `-1`"),
        ('{"keep_last": true}', "field `keep_last` must be an integer >= 0, got `true`"),
        ('{"keep_last": 2, "max_age": 60}', "unknown field `max_age`"),
        ('{"max_age_seconds": "7d"}', 'field `max_age_seconds` must be a number of seconds >= 0, got `"7d"`'),
        ('{"kinds": ["event"]}', "give `max_age_seconds`, `keep_last` or both"),
        ('{"keep_last": 1, "kinds": []}', "field `kinds` must be a non-empty list"),
    ],
)  # fmt: skip
def test_a_bad_config_fails_naming_the_problem_and_changes_nothing(
    tmp_path, policy_wasm, cache_dir, config, problem
):
    path = tmp_path / "events.ndjson"
    quire(cache_dir, "append", "--path", path, stdin="".join(line + "\n" for line in history()))
    before = path.read_bytes()

    done = quire(
        cache_dir, "compact", "--path", path, "--retention", policy_wasm,
        "--retention-config", config, check=False,
    )  # fmt: skip

    assert done.returncode != 0
    assert "invalid configuration" in done.stderr, done.stderr
    assert problem in done.stderr, done.stderr
    assert path.read_bytes() == before


def test_per_store_retention_with_the_python_policy(tmp_path, policy_wasm, cache_dir):
    lines = history()
    path = tmp_path / "events.ndjson"
    quire(cache_dir, "append", "--path", path, stdin="".join(line + "\n" for line in lines))

    quire(cache_dir, "compact", "--path", path, "--retain", f'b={policy_wasm}:{{"keep_last": 1}}')

    # Store b keeps its newest event (12), audit (4) and dead letter (11); a is untouched.
    kept = [0, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]
    assert read(cache_dir, "--path", path) == [lines[n] for n in kept]


@pytest.fixture
def policy_module(tmp_path, monkeypatch):
    """`policy.py` imported natively, on the stub bindings componentize-py
    generates (their dataclasses and enums are real)."""
    bindings = tmp_path / "bindings"
    subprocess.run(
        [str(COMPONENTIZE_PY), "-d", str(WIT), "-w", "retention-policy", "bindings", str(bindings)],
        check=True,
        capture_output=True,
    )
    # Copied, so that no __pycache__ lands in the source tree.
    shutil.copy(POLICY_DIR / "policy.py", tmp_path / "policy.py")
    monkeypatch.syspath_prepend(str(bindings))
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ("policy", "wit_world", "componentize_py_types")
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name.startswith(names)}
    yield importlib.import_module("policy")
    for name in [name for name in sys.modules if name.startswith(names)]:
        del sys.modules[name]
    sys.modules.update(saved)


def test_plan_units_decides_from_time_ranges_only_when_it_can(policy_module):
    from componentize_py_types import Err
    from wit_world.exports.policy import MetaBatch, MetaEntry, PolicyError_InvalidState
    from wit_world.exports.policy import UnitVerdict as V
    from wit_world.imports.types import UnitInfo

    now = 1_000_000.0

    def unit(lo, hi, sealed=True, records=3):
        return UnitInfo("u", None, 100, records, lo, hi, sealed, "ndjson")

    units = [
        unit(now - 9000, now - 8000),  # too old
        unit(now - 9000, now - 8000, sealed=False),  # too old, but live
        unit(now - 9000, now - 10),  # straddles
        unit(now - 100, now - 10),  # young
        unit(None, None),  # unknown range
        unit(None, None, records=0),  # empty
    ]
    create = policy_module.Evaluator.create
    age = create('{"max_age_seconds": 3600}', now)
    assert age.plan_units(units) == [V.DROP, V.FILTER, V.FILTER, V.KEEP, V.FILTER, V.KEEP]
    some_kinds = create('{"max_age_seconds": 3600, "kinds": ["event"]}', now)
    assert some_kinds.plan_units(units) == [V.FILTER, V.FILTER, V.FILTER, V.KEEP, V.FILTER, V.KEEP]
    floor = create('{"max_age_seconds": 3600, "keep_last": 1}', now)
    assert floor.plan_units(units) == [V.FILTER] * 5 + [V.KEEP]

    # Pass two must not see records pass one did not.
    batch = MetaBatch(["event", "s"], [MetaEntry(0, 1, now - 9000, 10)] * 2)
    floor.observe(MetaBatch(batch.names, batch.entries[:1]))
    with pytest.raises(Err) as raised:
        floor.decide(batch)
    assert isinstance(raised.value.value, PolicyError_InvalidState)
    assert "decide saw more records of store `s`, kind `event`" in raised.value.value.value
    with pytest.raises(Err):
        floor.observe(batch)  # observe after decide
