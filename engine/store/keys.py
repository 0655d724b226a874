"""The Redis key layout: every key the engine uses is built here and nowhere else.

| key                              | type   | holds                                        |
| -------------------------------- | ------ | -------------------------------------------- |
| `<p>:{v:<pid>}:features`         | hash   | a visitor's features (models.features)       |
| `<p>:{defs}:slots`               | hash   | slot name -> slot definition (JSON)          |
| `<p>:{defs}:version`             | string | bumped on every definition change            |
| `<p>:items`                      | hash   | item id -> catalogue entry (JSON)            |
| `<p>:events`                     | stream | the event log (capped, pseudonymized)        |

`<p>` is the configured prefix (one Redis can host several sites). Keys of one
visitor share the hash tag `{v:<pid>}` and definition keys share `{defs}`, so the
multi-key scripts and transactions also run on Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one prefix."""

    prefix: str

    def visitor_features(self, pid: str) -> str:
        return f"{self.prefix}:{{v:{pid}}}:features"

    def definitions(self, kind: str) -> str:
        return f"{self.prefix}:{{defs}}:{kind}"

    @property
    def definitions_version(self) -> str:
        return f"{self.prefix}:{{defs}}:version"

    @property
    def items(self) -> str:
        return f"{self.prefix}:items"

    @property
    def event_log(self) -> str:
        return f"{self.prefix}:events"
