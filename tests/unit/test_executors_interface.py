"""Both queue executors keep the interface the commands use (``executors.base.QueueExecutor``):
the same method names, parameters, kinds and defaults, so a command written against one runs
the other. An executor's own ``follow`` limits are keyword-only (the interface's ``**limits``)."""

from __future__ import annotations

import inspect

import pytest

from starfish_batch.launcher.executors.base import Observer, QueueExecutor, SilentObserver
from starfish_batch.launcher.executors.batch import BatchExecutor
from starfish_batch.launcher.executors.slurm import SlurmExecutor

EXECUTORS = [BatchExecutor, SlurmExecutor]
METHODS = ["preflight", "submit", "follow", "status"]


def _shape(parameters) -> list[tuple[str, inspect._ParameterKind, object]]:
    return [(p.name, p.kind, p.default) for p in parameters]


def test_the_interface_names_the_methods_the_commands_call():
    declared = [n for n, v in vars(QueueExecutor).items() if inspect.isfunction(v) and not n.startswith("_")]
    assert sorted(declared) == sorted(METHODS)


@pytest.mark.parametrize("executor", EXECUTORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", METHODS)
def test_executor_has_the_interface_signature(executor, method):
    wanted = list(inspect.signature(getattr(QueueExecutor, method)).parameters.values())
    found = list(inspect.signature(getattr(executor, method)).parameters.values())
    extra_keywords = any(p.kind is p.VAR_KEYWORD for p in wanted)
    wanted = [p for p in wanted if p.kind is not p.VAR_KEYWORD]
    assert _shape(found[:len(wanted)]) == _shape(wanted)
    rest = found[len(wanted):]
    if extra_keywords:  # the executor's own limits: keyword-only, each with a default
        assert all(p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in rest), rest
    else:
        assert rest == []


def test_silent_observer_is_an_observer():
    declared = {n for n, v in vars(Observer).items() if inspect.isfunction(v) and not n.startswith("_")}
    assert declared == {"warn", "progress", "failed", "close"}
    for name in declared:
        assert _shape(inspect.signature(getattr(SilentObserver, name)).parameters.values()) == \
            _shape(inspect.signature(getattr(Observer, name)).parameters.values())
