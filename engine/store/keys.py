"""The Redis key layout: every key the engine uses is built here and nowhere else.

| key                              | type   | holds                                              |
| -------------------------------- | ------ | -------------------------------------------------- |
| `<p>:{v:<pid>}:features`         | hash   | a visitor's features (models.features)             |
| `<p>:{v:<pid>}:history`          | zset   | `<type code>:<item>` -> time of the latest (capped)|
| `<p>:{v:<pid>}:consent`          | hash   | personalization / analytics -> 1 or 0              |
| `<p>:{v:<pid>}:eids`             | zset   | event id -> arrival time (duplicate filter)        |
| `<p>:{v:<pid>}:log`              | list   | stream ids of this profile's event-log entries     |
| `<p>:{v:<pid>}:alias`            | string | the profile this visitor id was merged into        |
| `<p>:{v:<pid>}:aliases`          | set    | visitor pids merged into this profile              |
| `<p>:{v:<pid>}:exp`              | hash   | experiment -> arm, exposure; `<exp>|<metric>` -> y |
| `<p>:{defs}:slots`               | hash   | slot name -> slot definition (JSON)                |
| `<p>:{defs}:segments`            | hash   | segment name -> segment definition (JSON)          |
| `<p>:{defs}:version`             | string | bumped on every definition change                  |
| `<p>:items`                      | hash   | item id -> catalogue entry (JSON)                  |
| `<p>:items:version`              | string | bumped on every catalogue change                   |
| `<p>:models:active`              | hash   | artifact kind -> active version                    |
| `<p>:bandit:<slot>`              | hash   | `t|s:<segment>:<variant>` -> trials, successes     |
| `<p>:{x:<id>}:stats`             | hash   | an experiment's sums per arm, segment and metric   |
| `<p>:events`                     | stream | the event log (capped, pseudonymized)              |
| `<p>:erasures`                   | zset   | erased pid -> time; the archiver drops their rows  |

`<p>` is the configured prefix (one Redis can host several sites). Keys of one
visitor share the hash tag `{v:<pid>}` and definition keys share `{defs}`.
Event-log entries have two fields: `e`, the event record as JSON
(`models.events.Event.to_record`), and `p`, the pid of the profile it landed on
(the customer's profile once an `identify` merged the visitor into it).

The ingest and merge scripts (`engine/store/profiles.py`) follow a visitor's
alias to its profile inside Redis, so they build visitor keys from
`visitor_key_base` and the suffixes below; they need one Redis (or one shard).
The experiment scripts (ingest, expose, erase: `lua/experiment_sums.lua`) change a
visitor's `exp` hash and the experiment's stats hash in one call, so they need one
shard too, although `{x:<id>}` keeps an experiment's keys together.
"""

from __future__ import annotations

from dataclasses import dataclass

VISITOR_SUFFIXES: tuple[str, ...] = (
    "features",
    "history",
    "consent",
    "eids",
    "log",
    "alias",
    "aliases",
    "exp",
)
ARCHIVE_GROUP = "archiver"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one prefix."""

    prefix: str

    @property
    def visitor_key_base(self) -> str:
        """What every visitor key starts with, before the pid."""
        return f"{self.prefix}:{{v:"

    def visitor(self, pid: str, suffix: str) -> str:
        if suffix not in VISITOR_SUFFIXES:
            raise ValueError(f"unknown visitor key {suffix!r}")
        return f"{self.prefix}:{{v:{pid}}}:{suffix}"

    def visitor_keys(self, pid: str) -> list[str]:
        """Every key one visitor can have (what erasure deletes)."""
        return [self.visitor(pid, suffix) for suffix in VISITOR_SUFFIXES]

    def visitor_features(self, pid: str) -> str:
        return f"{self.prefix}:{{v:{pid}}}:features"

    @property
    def visitor_features_pattern(self) -> str:
        """SCAN pattern matching every visitor's features hash."""
        return f"{self.prefix}:{{v:*}}:features"

    def definitions(self, kind: str) -> str:
        return f"{self.prefix}:{{defs}}:{kind}"

    @property
    def definitions_version(self) -> str:
        return f"{self.prefix}:{{defs}}:version"

    @property
    def items(self) -> str:
        return f"{self.prefix}:items"

    @property
    def items_version(self) -> str:
        return f"{self.prefix}:items:version"

    @property
    def active_models(self) -> str:
        return f"{self.prefix}:models:active"

    def bandit(self, slot: str) -> str:
        """A bandit slot's counters (engine.decisions.bandit)."""
        return f"{self.prefix}:bandit:{slot}"

    @property
    def experiment_key_base(self) -> str:
        """What an experiment's keys start with, before its id (for the scripts)."""
        return f"{self.prefix}:{{x:"

    def experiment_stats(self, experiment: str) -> str:
        """An experiment's sufficient statistics (engine.experiments.tracking)."""
        return f"{self.prefix}:{{x:{experiment}}}:stats"

    @property
    def event_log(self) -> str:
        return f"{self.prefix}:events"

    @property
    def erasures(self) -> str:
        return f"{self.prefix}:erasures"
