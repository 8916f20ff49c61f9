"""Every schedule's formula at chosen points (SPEC §4), purity, and the torch adapter."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from lrsched.core.errors import ConfigError
from lrsched.schedules import curves as S
from lrsched.schedules.optim import SGD, ScheduleFreeSGD
from lrsched.schedules.registry import build_plan, lr_curve, parse_spec


def sched(type_: str, **kw):
    return build_plan(parse_spec("s", {"type": type_, **kw}), steps_per_epoch=10)


ARTICLE = {
    "constant": {"type": "constant", "lr": 0.3},
    "square_root": {"type": "square_root", "lr": 0.1},
    "factor": {"type": "factor", "base_lr": 0.6, "factor": 0.8, "min_lr": 0.01},
    "multi_factor": {"type": "multi_factor", "base_lr": 0.5, "milestones": [3, 8], "gamma": 0.5},
    "cosine": {"type": "cosine", "base_lr": 0.2, "final_lr": 0.02, "T": 10},
    "cosine_warmup": {"type": "cosine", "base_lr": 0.2, "final_lr": 0.02, "T": 10, "warmup": 3},
}
EXTRA = {
    "linear": {"type": "linear", "base_lr": 0.3, "final_lr": 0.01, "T": 10},
    "noam": {"type": "noam", "base_lr": 0.4, "warmup": 2},
    "exponential": {"type": "exponential", "base_lr": 0.4, "gamma": 0.7},
    "polynomial": {"type": "polynomial", "base_lr": 0.4, "T": 10, "power": 2.0},
    "one_cycle": {"type": "one_cycle", "max_lr": 0.5, "T": 10},
    "cosine_restarts": {"type": "cosine_restarts", "base_lr": 0.3, "T_0": 2, "T_mult": 2},
    "torch_step": {"type": "StepLR", "base_lr": 0.3, "step_size": 2, "gamma": 0.5},
    "rex": {"type": "rex", "base_lr": 0.4, "T": 10},
    "rex_final": {"type": "rex", "base_lr": 0.4, "final_lr": 0.04, "T": 10},
    "wsd_linear": {"type": "wsd", "base_lr": 0.4, "T": 10, "cooldown": 0.2, "shape": "linear", "warmup": 1},
    "wsd_cosine": {"type": "wsd", "base_lr": 0.4, "T": 10, "cooldown": 0.2, "shape": "cosine", "warmup": 1},
    "wsd_1-sqrt": {"type": "wsd", "base_lr": 0.4, "T": 10, "cooldown": 0.2, "shape": "1-sqrt", "warmup": 1,
                   "final_lr": 0.04},
}


@pytest.mark.parametrize(("name", "t", "expected"), [
    ("constant", 0, 0.3), ("constant", 7.5, 0.3),
    ("square_root", 0, 0.1), ("square_root", 3, 0.05), ("square_root", 8, 0.1 / 3),
    ("factor", 0, 0.6), ("factor", 1, 0.48), ("factor", 2, 0.384), ("factor", 30, 0.01),
    ("multi_factor", 0, 0.5), ("multi_factor", 2.99, 0.5), ("multi_factor", 3, 0.25),
    ("multi_factor", 7, 0.25), ("multi_factor", 8, 0.125), ("multi_factor", 9, 0.125),
    ("cosine", 0, 0.2), ("cosine", 5, 0.11), ("cosine", 10, 0.02), ("cosine", 12, 0.02),
    ("cosine", 2.5, 0.02 + 0.18 * (1 + math.cos(math.pi / 4)) / 2),
    ("cosine_warmup", 0, 0.0), ("cosine_warmup", 1.5, 0.1), ("cosine_warmup", 3, 0.2),
    ("cosine_warmup", 6.5, 0.11), ("cosine_warmup", 10, 0.02), ("cosine_warmup", 12, 0.02),
])
def test_article_schedules_match_spec_formulas(name: str, t: float, expected: float) -> None:
    assert build_plan(parse_spec(name, ARTICLE[name]), 10)(t) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("name", "t", "expected"), [
    ("linear", 0, 0.3), ("linear", 5, 0.155), ("linear", 10, 0.01), ("linear", 20, 0.01),
    ("noam", 0, 0.0), ("noam", 1, 0.2), ("noam", 2, 0.4), ("noam", 8, 0.2),
    ("exponential", 0, 0.4), ("exponential", 2, 0.4 * 0.49),
    ("polynomial", 0, 0.4), ("polynomial", 5, 0.1), ("polynomial", 10, 0.0),
    ("one_cycle", 0, 0.02), ("one_cycle", 3, 0.5), ("one_cycle", 10, 0.02 / 1e4),
    ("cosine_restarts", 0, 0.3), ("cosine_restarts", 1, 0.15), ("cosine_restarts", 2, 0.3),
    ("cosine_restarts", 4, 0.15), ("cosine_restarts", 6, 0.3),
    ("torch_step", 0, 0.3), ("torch_step", 1.9, 0.3), ("torch_step", 2, 0.15), ("torch_step", 5, 0.075),
    # REX: (1 - p) / (1 - p/2) of the way from final to base, p = t/T
    ("rex", 0, 0.4), ("rex", 5, 0.4 * 0.5 / 0.75), ("rex", 8, 0.4 * 0.2 / 0.6), ("rex", 10, 0.0),
    ("rex", 12, 0.0), ("rex_final", 5, 0.04 + 0.36 * 0.5 / 0.75), ("rex_final", 10, 0.04),
    # WSD: warmup over [0, 1], stable to T * (1 - cooldown) = 8, cooldown over [8, 10]
    *[(f"wsd_{shape}", t, lr) for shape in ("linear", "cosine") for t, lr in
      ((0, 0.0), (0.5, 0.2), (1, 0.4), (5, 0.4), (8, 0.4), (10, 0.0), (12, 0.0))],
    ("wsd_linear", 8.5, 0.3), ("wsd_linear", 9, 0.2),
    ("wsd_cosine", 8.5, 0.4 * (1 + math.cos(math.pi / 4)) / 2), ("wsd_cosine", 9, 0.2),
    ("wsd_1-sqrt", 0, 0.0), ("wsd_1-sqrt", 1, 0.4), ("wsd_1-sqrt", 8, 0.4),
    ("wsd_1-sqrt", 8.5, 0.04 + 0.36 * 0.5), ("wsd_1-sqrt", 9, 0.04 + 0.36 * (1 - math.sqrt(0.5))),
    ("wsd_1-sqrt", 10, 0.04), ("wsd_1-sqrt", 11, 0.04),
])
def test_extra_schedules(name: str, t: float, expected: float) -> None:
    assert build_plan(parse_spec(name, EXTRA[name]), 10)(t) == pytest.approx(expected, abs=1e-12)


def test_warmup_is_composition_over_any_schedule() -> None:
    s = sched("constant", lr=0.4, warmup=2, warmup_begin_lr=0.1)
    assert [s(t) for t in (0, 1, 2, 5)] == pytest.approx([0.1, 0.25, 0.4, 0.4])
    assert s.schedule == S.Phases((2.0,), (S.Ramp(0.1, 0.4, 2.0), S.Constant(0.4)))  # one ramp, then the schedule


def test_wsd_is_warmup_stable_decay_phases() -> None:
    w = sched("wsd", base_lr=0.4, T=10, cooldown=0.2, warmup=1, warmup_begin_lr=0.1, shape="linear").schedule
    assert w == S.Phases((1.0, 8.0), (S.Ramp(0.1, 0.4, 1.0), S.Constant(0.4), S.Cooldown(0.4, 0.0, 2.0, "linear")))


def test_noam_warms_up_from_warmup_begin_lr() -> None:
    """noam's warmup is its own (also its decay's offset), from warmup_begin_lr like every other type's."""
    s = sched("noam", base_lr=0.4, warmup=2, warmup_begin_lr=0.1)
    assert [s(t) for t in (0, 1, 2, 8)] == pytest.approx([0.1, 0.25, 0.4, 0.2])
    assert parse_spec("n", {"type": "noam", "base_lr": 0.4, "warmup": 2, "warmup_begin_lr": 0.1}).params == \
        {"base_lr": 0.4, "warmup": 2.0, "warmup_begin_lr": 0.1}


def test_plateau_reduces_after_patience_and_is_pure() -> None:
    p = S.Plateau(base_lr=0.1, factor=0.5, patience=1)
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9]
    lrs = [p(e, losses) for e in range(7)]
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025])
    assert [p(e, losses) for e in range(7)] == lrs


@pytest.mark.parametrize("spec", list(ARTICLE.values()) + list(EXTRA.values()), ids=list(ARTICLE) + list(EXTRA))
def test_schedules_are_pure_and_picklable(spec: dict) -> None:
    s = build_plan(parse_spec("s", spec), 10)
    first = [s(t / 4) for t in range(60)]
    assert [s(t / 4) for t in range(60)] == first          # calling again changes nothing
    assert [s(t / 4) for t in reversed(range(60))] == first[::-1]  # nor does the order
    clone = pickle.loads(pickle.dumps(s))
    assert [clone(t / 4) for t in range(60)] == first


@pytest.mark.parametrize(("cls", "kwargs", "interval"), [
    ("MultiStepLR", {"milestones": [3, 8], "gamma": 0.5}, "epoch"),
    ("CosineAnnealingLR", {"T_max": 10, "eta_min": 0.01}, "epoch"),
    ("ExponentialLR", {"gamma": 0.9}, "step"),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 40}, "step"),
])
def test_torch_adapter_gives_the_torch_schedulers_lrs(cls: str, kwargs: dict, interval: str) -> None:
    steps_per_epoch = 4
    s = build_plan(parse_spec("t", {"type": cls, "base_lr": 0.5, "interval": interval, **kwargs}),
                       steps_per_epoch)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    ref = getattr(torch.optim.lr_scheduler, cls)(opt, **kwargs)
    per = steps_per_epoch if interval == "step" else 1
    expected = []
    for _ in range(10 * per - 1):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    got = [s(i / per) for i in range(10 * per - 1)]
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kwargs", [{"total_steps": 40}, {"epochs": 10, "steps_per_epoch": 4},
                                    {"total_steps": 40, "anneal_strategy": "linear", "three_phase": True}])
def test_torch_one_cycle_matches_every_step_and_holds_its_final_lr(kwargs: dict) -> None:
    """Step by step against OneCycleLR, its last step included; after it, its final LR (not step N - 2's)."""
    s = build_plan(parse_spec("t", {"type": "OneCycleLR", "base_lr": 0.5, "max_lr": 0.5, "interval": "step",
                                    **kwargs}), steps_per_epoch=4)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, **kwargs)
    expected = [opt.param_groups[0]["lr"]]
    for _ in range(39):
        opt.step()
        ref.step()
        expected.append(opt.param_groups[0]["lr"])
    assert [s(i / 4) for i in range(40)] == expected
    assert expected[-1] == pytest.approx(0.5 / 25 / 1e4)  # OneCycleLR ends at initial_lr / final_div_factor
    assert [s(i / 4) for i in range(40, 48)] == [expected[-1]] * 8


def test_torch_multistep_equals_builtin_multi_factor() -> None:
    torch_s = sched("MultiStepLR", base_lr=0.5, milestones=[3, 8], gamma=0.5)
    ours = sched("multi_factor", base_lr=0.5, milestones=[3, 8], gamma=0.5)
    assert [torch_s(e) for e in range(12)] == pytest.approx([ours(e) for e in range(12)])


# --- the article's defects (SPEC §4) must not come back -------------------------------------------

def test_defect3_plotting_does_not_change_factor_or_cosine() -> None:
    """The article's FactorScheduler/CosineScheduler mutated themselves when called (plotted)."""
    for spec in (ARTICLE["factor"], ARTICLE["cosine"], ARTICLE["cosine_warmup"]):
        fresh = build_plan(parse_spec("s", spec), 10)
        plotted = build_plan(parse_spec("s", spec), 10)
        lr_curve(plotted, 15, 4)  # what plot_scheduler did before training
        assert pickle.dumps(plotted) == pickle.dumps(fresh)  # its whole state, hidden attributes included
        assert [plotted(e) for e in range(10)] == [fresh(e) for e in range(10)]
    factor = build_plan(parse_spec("f", ARTICLE["factor"]), 10)
    lr_curve(factor, 11)  # plot it first, as the article did
    # the same object still starts at 0.6; the article's mutated scheduler gave max(0.01, 0.6*0.8**11) here
    assert factor(0) == 0.6


@pytest.mark.parametrize(("spec", "message"), [
    ({"type": "nope", "lr": 1}, "unknown schedule type 'nope'"),
    ({"type": "constant", "lr": -0.1}, "schedules.s.lr: learning rate must be > 0"),
    ({"type": "constant", "lr": 0.1, "gamma": 2}, "schedules.s.gamma: unknown key"),
    ({"type": "cosine", "base_lr": 0.2, "final_lr": 0.0}, "missing 'T'"),
    ({"type": "cosine", "base_lr": 0.2, "final_lr": 0.0, "T": 10, "warmup": 10}, "warmup: must be smaller than T"),
    ({"type": "multi_factor", "base_lr": 0.5, "milestones": [8, 3]}, "strictly increasing"),
    ({"type": "constant", "lr": "fast"}, "schedules.s.lr: must be a finite number"),
    ({"type": "constant", "lr": 0.1, "interval": "batch"}, "interval: must be 'epoch' or 'step'"),
    ({"type": "StepLR", "base_lr": 0.1}, "missing required argument 'step_size'"),
    ({"type": "StepLR", "base_lr": 0.1, "step_size": 2, "gama": 0.5}, "schedules.s.gama: unknown argument"),
    ({"type": "LambdaLR", "base_lr": 0.1}, "unknown schedule type 'LambdaLR'"),
    ({"type": "wsd", "base_lr": 0.1, "T": 10, "shape": "sqrt"}, "schedules.s.shape: must be one of linear, cosine, 1-sqrt"),
    ({"type": "wsd", "base_lr": 0.1, "T": 10, "cooldown": 0}, "schedules.s.cooldown: the fraction of T"),
    ({"type": "wsd", "base_lr": 0.1, "T": 10, "cooldown": 2}, "schedules.s.cooldown: the fraction of T"),
    ({"type": "plateau", "base_lr": 0.1, "cooldown": 0.2}, "schedules.s.cooldown: a whole number of epochs"),
    ({"type": "plateau", "base_lr": 0.1, "patience": -1}, "schedules.s.patience: a whole number of epochs"),
    ({"type": "wsd", "base_lr": 0.1, "T": 10, "cooldown": 0.5, "warmup": 6}, "warmup: must end before the cooldown"),
    ({"type": "plateau", "base_lr": 0.1, "interval": "step"}, "changes its LR once per epoch"),
    ({"type": "plateau", "base_lr": 0.1, "warmup": 1}, "warmup: not supported for the metric-driven"),
    ({"type": "cosine", "base_lr": 0.1, "T": 10, "final_lr": 0, "optimizer": "schedule_free_sgd"},
     "schedule_free_sgd replaces the schedule; use type: constant"),
    ({"type": "constant", "lr": 1.0, "optimizer": "schedule_free_sgd", "momentum": 0.0}, "needs 0 < momentum < 1"),
    ({"type": "constant", "lr": 1.0, "optimizer": "schedule_free_sgd", "interval": "epoch"}, "remove 'interval'"),
    ({"type": "constant", "lr": 1.0, "optimizer": "adam"}, "optimizer: must be one of sgd, schedule_free_sgd"),
])
def test_invalid_schedules_name_the_key(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_spec("s", spec)


@pytest.mark.parametrize("cooldown", [0, 2])
def test_plateau_cooldown_counts_epochs_as_in_pytorch(cooldown: int) -> None:
    """`cooldown` means epochs for plateau (PyTorch's ReduceLROnPlateau), a fraction of T only for wsd."""
    plan = sched("plateau", base_lr=0.1, factor=0.5, patience=0, cooldown=cooldown)
    losses = [1.0] * 8 + [0.5] * 4
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, cooldown=cooldown)
    expected = [0.1]
    for loss in losses:  # the LR of epoch e + 1 follows epoch e's loss
        ref.step(loss)
        expected.append(opt.param_groups[0]["lr"])
    assert [plan(e, losses) for e in range(len(losses) + 1)] == pytest.approx(expected, rel=1e-12)
    assert expected[3] == (0.025 if cooldown == 0 else 0.05)  # the cooldown held the LR after the first cut


def test_every_type_checks_each_of_its_own_keys() -> None:
    """A key's rule belongs to its type: each factory parameter has one, and no other key does."""
    import inspect

    from lrsched.schedules.registry import RULES, TYPES

    assert set(RULES) == set(TYPES)
    for type_, factory in TYPES.items():
        assert set(RULES[type_]) == set(inspect.signature(factory).parameters), type_


def test_plan_carries_interval_and_metric_rule() -> None:
    step = build_plan(parse_spec("c", {**ARTICLE["cosine_warmup"], "interval": "step"}), 10)
    assert (step.interval, step.per_step, step.optimizer, step.metric_driven) == ("step", True, SGD(), False)
    plateau = build_plan(parse_spec("p", {"type": "plateau", "base_lr": 0.1, "patience": 0, "threshold": 10.0}), 10)
    assert plateau.metric_driven and not plateau.per_step
    assert [plateau(e, [1.0, 1.0]) for e in range(3)] == pytest.approx([0.1, 0.01, 0.001])


def test_schedule_free_plan_is_its_warmup_then_a_constant() -> None:
    spec = parse_spec("sf", {"type": "constant", "lr": 2.0, "warmup": 0.5, "optimizer": "schedule_free_sgd"})
    assert (spec.momentum, spec.as_dict()["optimizer"]) == (0.9, "schedule_free_sgd")
    plan = build_plan(spec, steps_per_epoch=10)
    assert (plan.interval, plan.optimizer) == ("step", ScheduleFreeSGD(lr=2.0, warmup_steps=5))
    # schedulefree ramps lr * (k + 1) / warmup_steps at step k; the optimizer itself is given the constant
    assert [plan(k / 10) for k in range(7)] == pytest.approx([0.4, 0.8, 1.2, 1.6, 2.0, 2.0, 2.0])
    assert {plan.rates(k / 10)[1] for k in range(30)} == {2.0}


@pytest.mark.parametrize("spec", [*ARTICLE.values(), *EXTRA.values(),
                                  {"type": "constant", "lr": 1.0, "warmup": 1, "optimizer": "schedule_free_sgd"},
                                  {"type": "plateau", "base_lr": 0.1, "momentum": 0.9}],
                         ids=[*ARTICLE, *EXTRA, "schedule_free", "plateau"])
def test_a_spec_round_trips_through_as_dict(spec: dict) -> None:
    """Tuning rebuilds a schedule from ``as_dict()`` plus the trial's params: it must parse back."""
    parsed = parse_spec("s", spec)
    assert parse_spec("s", parsed.as_dict()) == parsed
