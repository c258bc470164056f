"""GitLab's deep merge, keeping source positions on every merged value.

``include`` and ``extends`` both combine configs with Rails' ``Hash#deep_merge``: where both
sides hold a mapping the two merge key by key, and anything else (lists included) on the
overriding side replaces the base wholesale, ``null`` too. Keys keep the place they first had,
new keys go last, which is also the order GitLab's merged YAML shows.

The inputs are never modified: a template merged into 500 jobs must stay the same template.
Only mappings that exist on both sides are copied; everything else is shared, so callers treat
merged values as read-only and replace rather than mutate them.
"""

from __future__ import annotations

from typing import Any

from ferrous.pipeline_config.problems import UNKNOWN_POSITION
from ferrous.pipeline_config.yaml_source import YMap, position_of


def copy_map(source: dict[Any, Any]) -> YMap:
    """A shallow copy that is a ``YMap`` with the source's positions, safe to add keys to."""
    result = YMap(source, pos=position_of(source))
    if isinstance(source, YMap):
        result.key_pos = dict(source.key_pos)
        result.value_pos = dict(source.value_pos)
    return result


def deep_merge(base: Any, over: Any) -> Any:
    """``base.deep_merge(over)`` as Rails does it, returning a new mapping when both are."""
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return over
    result = copy_map(base)
    merge_into(result, over)
    if isinstance(over, YMap):
        result.pos = over.pos
    return result


def overlay(target: YMap, over: dict[Any, Any]) -> None:
    """Put every entry of ``over`` into ``target`` as is, with its positions (no deep merge)."""
    target.update(over)
    if isinstance(over, YMap):
        target.key_pos.update(over.key_pos)
        target.value_pos.update(over.value_pos)
    else:
        for key in over:
            target.key_pos[key] = target.value_pos[key] = UNKNOWN_POSITION


def merge_into(target: YMap, over: dict[Any, Any]) -> None:
    """Deep-merge ``over`` into ``target``, which the caller owns (its nested maps it does not)."""
    nested = [
        (key, current)
        for key, value in over.items()
        if isinstance(value, dict) and isinstance(current := target.get(key), dict)
    ]
    overlay(target, over)
    for key, base in nested:
        target[key] = deep_merge(base, over[key])
