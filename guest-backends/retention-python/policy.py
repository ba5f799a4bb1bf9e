"""A quire retention policy written in Python: keep what is recent, and never
less than the last N of each store and kind.

Configuration (a JSON object; unknown fields are refused):

    {"max_age_seconds": S, "keep_last": N, "kinds": ["dead_letter", ...]}

- ``max_age_seconds`` (number >= 0): records younger than this are kept.
- ``keep_last`` (integer >= 0, default 0): the newest N records of every
  (store, kind) pair are kept whatever their age, so a system that has gone
  quiet keeps its last N events instead of losing its whole history to the
  age limit. Without ``max_age_seconds`` this alone keeps the newest N per
  store and kind.
- ``kinds`` (non-empty list of strings, optional): the policy applies to
  these kinds only; records of every other kind are kept.

At least one of ``max_age_seconds`` and ``keep_last`` is required. A record is
kept when it is young enough OR among the newest ``keep_last`` of its store
and kind ("newest" meaning appended last: the order the host replays).

The built-in ``standard`` policy applies its rules together (age AND count),
puts every kind without an override into one group and counts across stores
(per-store limits need one ``--retain STORE=...`` per store, named in
advance); this one is a floor for every store and kind it meets.

Memory: one counter per (store, kind) pair, never a list of records.

This module is the app given to ``componentize-py componentize``. Because the
exported interface is named ``policy``, componentize-py looks for the class
``Policy`` (the interface, which has no free functions) and the resource class
``Evaluator`` in a module named ``policy``: this one.
"""

import functools
import json
import math
import traceback

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.policy import (
    MetaBatch,
    PolicyError_InvalidConfig,
    PolicyError_InvalidState,
    UnitVerdict,
)

NAME = "recent-or-last"
EXPECTED = (
    'expected {"max_age_seconds": S (seconds, >= 0), "keep_last": N (integer >= 0), '
    '"kinds": ["kind", ...] (optional)}, with max_age_seconds or keep_last or both'
)
FIELDS = ("max_age_seconds", "keep_last", "kinds")


def _invalid_config(message):
    return Err(PolicyError_InvalidConfig(f"{NAME}: {message}; {EXPECTED}"))


def _invalid_state(message):
    return Err(PolicyError_InvalidState(f"{NAME}: {message}"))


def _bugs_as_errors(method):
    """An exception escaping an export traps the component, and the host
    sees only `unreachable` (it does not show a plugin's stderr). Turn it into
    `policy-error.invalid-state` naming the exception and the line instead."""

    @functools.wraps(method)
    def wrapper(*args):
        try:
            return method(*args)
        except Err:
            raise
        except Exception as e:
            where = traceback.extract_tb(e.__traceback__)[-1]
            raise _invalid_state(
                f"bug: {type(e).__name__}: {e} (policy.py line {where.lineno}, in {where.name})"
            ) from None

    return wrapper


def parse_config(text):
    """Returns (max_age_seconds or None, keep_last, kinds frozenset or None).

    Raises ``Err(policy-error.invalid-config)`` naming the problem."""
    if not text.strip():
        raise _invalid_config("no configuration given")
    try:
        fields = json.loads(text)
    except ValueError as e:
        raise _invalid_config(f"configuration is not valid JSON ({e})")
    if not isinstance(fields, dict):
        raise _invalid_config(f"configuration is not a JSON object: `{text.strip()}`")
    for name in fields:
        if name not in FIELDS:
            raise _invalid_config(f"unknown field `{name}`")
    if "max_age_seconds" not in fields and "keep_last" not in fields:
        raise _invalid_config("give `max_age_seconds`, `keep_last` or both")

    max_age = fields.get("max_age_seconds")
    if "max_age_seconds" in fields:
        if (
            isinstance(max_age, bool)
            or not isinstance(max_age, (int, float))
            or not math.isfinite(max_age)
            or max_age < 0
        ):
            raise _invalid_config(
                f"field `max_age_seconds` must be a number of seconds >= 0, "
                f"got `{json.dumps(max_age)}`"
            )
        max_age = float(max_age)

    keep_last = fields.get("keep_last", 0)
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0:
        raise _invalid_config(
            f"field `keep_last` must be an integer >= 0, got `{json.dumps(keep_last)}`"
        )

    kinds = fields.get("kinds")
    if "kinds" in fields:
        if (
            not isinstance(kinds, list)
            or not kinds
            or not all(isinstance(k, str) and k for k in kinds)
        ):
            raise _invalid_config(
                f"field `kinds` must be a non-empty list of kind names, got `{json.dumps(kinds)}`"
            )
        kinds = frozenset(kinds)
    return max_age, keep_last, kinds


class Policy(exports.Policy):
    """The `policy` interface: everything it exports is the `evaluator` resource."""


class Evaluator:
    """The `evaluator` resource: one configured run of the policy."""

    def __init__(self, max_age, keep_last, kinds, now):
        self.max_age = max_age
        self.keep_last = keep_last
        self.kinds = kinds
        # Records with timestamp >= cutoff are young enough (as `standard`).
        self.cutoff = now - max_age if max_age is not None else math.inf
        # (store, kind) -> records seen in pass one.
        self.totals = {}
        # (store, kind) -> records decided so far in pass two.
        self.seen = {}
        self.deciding = False

    @classmethod
    @_bugs_as_errors
    def create(cls, config, now):
        max_age, keep_last, kinds = parse_config(config)
        return cls(max_age, keep_last, kinds, now)

    def describe(self):
        rules = []
        if self.max_age is not None:
            rules.append(f"records younger than {self.max_age:g}s")
        if self.keep_last:
            rules.append(f"the newest {self.keep_last} of every store and kind")
        text = f"{NAME}: keep " + " and ".join(rules)
        if self.kinds is not None:
            text += f" (kinds {', '.join(sorted(self.kinds))}; every other kind is kept)"
        return text

    def plan_units(self, units):
        return [self._plan(unit) for unit in units]

    def _plan(self, unit):
        if unit.records == 0:
            return UnitVerdict.KEEP
        if self.keep_last:
            # "The newest N of a group" depends on every record of the group:
            # a unit kept unread would not be counted. So read them all.
            return UnitVerdict.FILTER
        # Age alone: decidable from a unit's time range when it is known.
        if unit.min_timestamp is not None and unit.min_timestamp >= self.cutoff:
            return UnitVerdict.KEEP
        if (
            unit.sealed
            and self.kinds is None
            and unit.max_timestamp is not None
            and unit.max_timestamp < self.cutoff
        ):
            return UnitVerdict.DROP
        return UnitVerdict.FILTER

    def _groups(self, batch):
        """Per record of `batch`, its (store, kind) key, or None when the
        policy does not apply to its kind (such records are always kept)."""
        names = batch.names
        kinds = self.kinds
        keys = {}
        out = []
        for entry in batch.entries:
            pair = (entry.store, entry.kind)
            key = keys.get(pair, 0)
            if key == 0:
                kind = names[entry.kind]
                key = (names[entry.store], kind) if kinds is None or kind in kinds else None
                keys[pair] = key
            out.append(key)
        return out

    @_bugs_as_errors
    def observe(self, batch: MetaBatch):
        if self.deciding:
            raise _invalid_state("observe after decide")
        if not self.keep_last:
            return  # Age alone needs no counting.
        totals = self.totals
        for key in self._groups(batch):
            if key is not None:
                totals[key] = totals.get(key, 0) + 1

    @_bugs_as_errors
    def decide(self, batch: MetaBatch):
        self.deciding = True
        cutoff = self.cutoff
        keep_last = self.keep_last
        totals = self.totals
        seen = self.seen
        out = []
        for key, entry in zip(self._groups(batch), batch.entries):
            if key is None:
                out.append(True)
                continue
            keep = entry.timestamp >= cutoff
            if keep_last:
                before = seen.get(key, 0)
                total = totals.get(key, 0)
                if before >= total:
                    raise _invalid_state(
                        f"decide saw more records of store `{key[0]}`, kind `{key[1]}` "
                        f"than observe did ({total})"
                    )
                seen[key] = before + 1
                keep = keep or before + keep_last >= total
            out.append(keep)
        return out
