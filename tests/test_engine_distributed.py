"""The process-group abstraction: a group of one is the identity, rank-0 work is skipped
elsewhere, and the trainer reaches torch.distributed only through it. (Two real processes:
tests/test_engine_ddp.py.)"""

from __future__ import annotations

import ast
import inspect

import torch
from torch import nn

from refinenet.engine import distributed, trainer
from refinenet.engine.distributed import ABSENT, DistInfo, ProcessGroup, SingleProcess


def test_a_group_of_one_is_the_identity():
    group = SingleProcess()
    assert (group.rank, group.world_size, group.is_main) == (0, 1, True)
    t = torch.tensor([1.5, 2.5])
    assert group.mean(t) is t and group.sum(t) is t and t.tolist() == [1.5, 2.5]
    assert group.gather({"a": 1}) == [{"a": 1}]
    assert group.only_main(lambda x: x + 1, 1) == 2 and group.from_main(lambda: "verdict") == "verdict"
    assert list(group.shard(5)) == [0, 1, 2, 3, 4]
    model = nn.Linear(2, 2)
    assert group.wrap(model, torch.device("cpu")) is model
    state = torch.get_rng_state()
    group.reseed(123)  # a single process keeps its random stream
    group.sync_buffers(model)
    group.barrier()
    assert torch.equal(torch.get_rng_state(), state)


def test_off_rank_0_the_main_only_work_is_skipped():
    group = ProcessGroup(DistInfo(rank=1, world_size=2))  # no collective is called below
    called = []
    writer = group.only_main(lambda: called.append(1) or "writer")
    assert writer is ABSENT and not called
    assert writer.steps([{"step": 1}]) is None and writer.close() is None  # any method: a no-op
    assert not writer
    assert list(group.shard(5)) == [1, 3]


def test_outside_torchrun_the_current_group_is_one_process():
    assert type(distributed.current()) is SingleProcess
    with distributed.join() as group:
        assert type(group) is SingleProcess


def test_the_trainer_has_no_rank_branches():
    """No condition in the trainer tests the rank or whether the run is distributed, and it
    does not call torch.distributed itself. (The world size may be compared: a checkpoint must
    come from as many processes; and the config's ``distributed`` section may be read.)"""
    tree = ast.parse(inspect.getsource(trainer))
    rank_words = {"is_main", "enabled", "rank", "main"}
    offenders = []
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.If, ast.IfExp, ast.While)):
                    words = {a.attr for a in ast.walk(node.test) if isinstance(a, ast.Attribute)}
                    words |= {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
                    if words & rank_words:
                        offenders.append(f"{cls.name}.{fn.name}: line {node.lineno}")
                if isinstance(node, ast.Attribute) and node.attr in ("distributed", "DistributedDataParallel"):
                    if isinstance(node.value, (ast.Name, ast.Attribute)) and ast.unparse(node.value) in ("torch", "nn.parallel", "torch.nn.parallel"):
                        offenders.append(f"{cls.name}.{fn.name}: line {node.lineno} uses {ast.unparse(node)}")
    assert not offenders, offenders
