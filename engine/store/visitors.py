"""A visitor's stored features: one hash per visitor, read whole, updated by a script."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from redis.asyncio.client import Pipeline

from engine.store.client import Store
from models.features import FeatureOp

# Applies a visitor's feature ops atomically. ARGV: ttl, then (kind, field, value, ts)
# per op. `latest` compares the event time with the stored last_seen before it moves.
APPLY_FEATURE_OPS = """
local key = KEYS[1]
for i = 2, #ARGV, 4 do
  local kind, field, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if kind == 'incr' then
    if string.find(value, '[%.eE]') then
      redis.call('HINCRBYFLOAT', key, field, value)
    else
      redis.call('HINCRBY', key, field, value)
    end
  elseif kind == 'max' or kind == 'min' then
    local current = tonumber(redis.call('HGET', key, field))
    local new = tonumber(value)
    if current == nil or (kind == 'max' and new > current) or (kind == 'min' and new < current) then
      redis.call('HSET', key, field, value)
    end
  elseif kind == 'latest' then
    local last = tonumber(redis.call('HGET', key, 'last_seen'))
    if last == nil or tonumber(ARGV[i + 3]) >= last then
      redis.call('HSET', key, field, value)
    end
  else
    return redis.error_reply('unknown feature op ' .. kind)
  end
end
redis.call('EXPIRE', key, ARGV[1])
return 1
"""


async def read_features(store: Store, pid: str) -> dict[bytes, bytes]:
    """The visitor's stored feature hash (empty for a visitor never seen): one round trip."""
    key = store.keys.visitor_features(pid)
    async with store.guard("read_features"):
        if store.hot is not None:
            return await store.hot.hgetall(key)
        # bytes in, bytes out: the client is created with decode_responses=False
        return await store.redis.hgetall(key)  # type: ignore[return-value]


def queue_feature_ops(
    pipe: Pipeline, store: Store, pid: str, ops: Sequence[FeatureOp], ttl_s: int
) -> None:
    """Queue one visitor's updates on `pipe` (EVAL keeps it one round trip: no SCRIPT
    EXISTS / LOAD dance, and Redis caches the compiled script by its hash)."""
    pipe.eval(APPLY_FEATURE_OPS, 1, store.keys.visitor_features(pid), ttl_s, *_flatten(ops))


def _flatten(ops: Iterable[FeatureOp]) -> list[str]:
    args: list[str] = []
    for op in ops:
        args += (op.kind, op.field, _text(op.value), repr(op.ts))
    return args


def _text(value: int | float | str) -> str:
    return repr(value) if isinstance(value, float) else str(value)
