"""Hooks named by the site configuration (``hooks`` and ``triggers``): imported and
checked on every rank when a container is opened for writing, so that a C or
Fortran program writing through the VOL connector gets them with no code change."""

from __future__ import annotations

import fnmatch
import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from esdm_hpc.comm import Comm, agree
from esdm_hpc.config import ConfigError, HookConfig, SiteConfig, TriggerConfig
from esdm_hpc.hooks.records import Hold, Hook, Stage


def check_callable(function: Any, when: Stage, args: Mapping[str, Any]) -> bool:
    """Whether an on_write hook takes the communicator; TypeError saying why
    ``function`` cannot be a hook of ``when`` called with ``args``."""
    if not callable(function):
        raise TypeError(f"{type(function).__name__} {function!r:.40} is not callable")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without one: the first call will tell
        return True
    placeholders = ("block", "offset", "comm") if when == "write" else ("context",)
    try:
        signature.bind(*placeholders, **args)
        return True
    except TypeError as error:
        problem = error
    if when == "write":
        try:
            signature.bind(*placeholders[:2], **args)
            return False
        except TypeError:
            pass
    expected = "(block, offset[, comm]" if when == "write" else "(context"
    given = "".join(f", {key}=..." for key in args)
    raise TypeError(f"{signature} cannot be called as {expected}{given}): {problem}")


def _import(function: str) -> Any:
    module_name, _, qualname = function.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise LookupError(f"cannot import module {module_name!r}: {error}") from None
    except Exception as error:  # the module's own code failed
        raise LookupError(
            f"importing module {module_name!r} failed: {type(error).__name__}: {error}"
        ) from None
    for part in qualname.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise LookupError(f"module {module_name!r} has no {qualname!r}") from None
    return found


def _resolve(spec: HookConfig | TriggerConfig) -> Hook:
    function = _import(spec.function)
    args = dict(spec.args)
    name = spec.name or spec.function
    if isinstance(spec, TriggerConfig):
        check_callable(function, "trigger", args)
        hold = Hold(spec.keep_last, spec.then)
        return Hook(name, spec.dataset, "trigger", function, args, None, spec.on_failure,
                    False, hold=hold)  # fmt: skip
    takes_comm = check_callable(function, spec.when, args)
    return Hook(name, spec.dataset, spec.when, function, args, spec.budget_s, spec.on_failure,
                takes_comm, blocks=spec.blocks)  # fmt: skip


def configured(site: SiteConfig, container: str, comm: Comm) -> list[Hook]:
    """The hooks and triggers ``site`` names for the container ``container``, imported
    and checked on every rank (collective): ConfigError naming the hook, the same on
    every rank, if a module is missing, a name is no callable or its signature does
    not fit."""
    entries = [("hooks", i, spec) for i, spec in enumerate(site.hooks)]
    entries += [("triggers", i, spec) for i, spec in enumerate(site.triggers)]
    agree(comm, "open (the configuration's hooks)", {"hooks": [repr(e) for e in entries]})
    resolved, problem = [], None
    held: dict[str, int] = {}  # dataset -> the trigger entry holding it
    for key, index, spec in entries:
        patterns = spec.containers or ("*",)
        if not any(fnmatch.fnmatchcase(container, pattern) for pattern in patterns):
            continue
        try:
            if isinstance(spec, TriggerConfig) and spec.dataset in held:
                raise LookupError(f"{spec.dataset} of esdm://{container} has a trigger already "
                                  f"(triggers[{held[spec.dataset]}])")  # fmt: skip
            resolved.append(_resolve(spec))
        except (LookupError, TypeError) as error:
            problem = f"{site.source}: {key}[{index}] ({spec.label}): {error}"
            break
        if isinstance(spec, TriggerConfig):
            held[spec.dataset] = index
    if entries:
        problems = comm.allgather(problem)
        failed = [rank for rank, p in enumerate(problems) if p]
        if failed:
            first = problems[failed[0]]
            everywhere = len(failed) == comm.size
            raise ConfigError(first if everywhere else f"{first} (on ranks {failed})")
    return resolved
