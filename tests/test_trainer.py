"""The trainer: determinism, the LR each epoch really trains at, divergence, seeds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lrsched.core.callbacks import Callback
from lrsched.data import load_split
from lrsched.schedules import curves as S
from lrsched.schedules.registry import build_plan, parse_spec
from lrsched.training import trainer
from lrsched.training.model import lenet
from lrsched.training.results import SeedResult, mean_history, summarize
from lrsched.training.trainer import FitOptions, fit

OPTS = FitOptions(epochs=3, batch_size=64, progress=False)


@pytest.fixture()
def splits(toy_root: Path):
    return load_split(toy_root, train=True), load_split(toy_root, train=False)


def test_lenet_has_the_articles_61706_parameters() -> None:
    assert sum(p.numel() for p in lenet().parameters()) == 61706
    assert lenet()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_same_seed_same_history_bit_for_bit(splits) -> None:
    train, test = splits
    a = fit(S.Cosine(0.2, 0.02, 3), train, {"test": test}, seed=5, opts=OPTS)
    b = fit(S.Cosine(0.2, 0.02, 3), train, {"test": test}, seed=5, opts=OPTS)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    c = fit(S.Cosine(0.2, 0.02, 3), train, {"test": test}, seed=6, opts=OPTS)
    assert strip(c.history) != strip(a.history)


def test_toy_data_is_learned(splits) -> None:
    train, test = splits
    result = fit(S.Constant(0.3), train, {"test": test}, seed=0, opts=FitOptions(epochs=4, batch_size=32, progress=False))
    assert result.final["test_acc"] > 0.9
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]


def test_defect1_epoch0_trains_at_lr0_not_at_a_default(splits) -> None:
    """The article always built SGD(lr=0.3) and applied the schedule one epoch late."""
    train, test = splits
    zero_first = S.Warmup(S.Constant(0.1), epochs=1, start_lr=0.0)  # lr(0) = 0 with interval: epoch
    result = fit(zero_first, train, {"test": test}, seed=1, opts=FitOptions(epochs=1, batch_size=64, progress=False))
    torch.manual_seed(1)
    untouched = lenet().state_dict()
    assert all(torch.equal(untouched[k], v) for k, v in result.model.state_dict().items())
    lrs = fit(S.Factor(0.6, 0.8, 0.01), train, {}, seed=0, opts=OPTS).history
    assert [r["lr"] for r in lrs] == pytest.approx([0.6, 0.48, 0.384])


def test_defect2_torch_multistep_really_drives_the_trained_net(splits) -> None:
    """The article attached MultiStepLR to another net's optimizer, so training stayed at 0.3."""
    train, test = splits
    opts = FitOptions(epochs=4, batch_size=64, progress=False)
    spec = parse_spec("m", {"type": "MultiStepLR", "base_lr": 0.5, "milestones": [1, 3], "gamma": 0.5})
    torch_run = fit(build_plan(spec, 10), train, {"test": test}, seed=0, opts=opts)
    ours = fit(S.MultiFactor(0.5, (1, 3), 0.5), train, {"test": test}, seed=0, opts=opts)
    const = fit(S.Constant(0.5), train, {"test": test}, seed=0, opts=opts)
    assert [r["lr"] for r in torch_run.history] == [0.5, 0.25, 0.25, 0.125]
    assert [r["train_loss"] for r in torch_run.history] == [r["train_loss"] for r in ours.history]
    assert torch_run.history[-1]["train_loss"] != const.history[-1]["train_loss"]


def test_step_interval_warmup_does_not_waste_epoch0(splits) -> None:
    train, test = splits
    spec = parse_spec("w", {"type": "cosine", "base_lr": 0.2, "final_lr": 0.02, "T": 3, "warmup": 1,
                            "interval": "step"})
    steps = []

    class Recorder(Callback):
        def on_step(self, step: int, t: float, lr: float) -> None:
            steps.append((step, t, lr))

    opts = FitOptions(epochs=3, batch_size=64, progress=False)
    result = fit(build_plan(spec, 10), train, {"test": test}, seed=0, opts=opts, callbacks=[Recorder()])
    n = len(steps) // 3
    assert n == 10  # 600 images / batch 64
    assert steps[0][2] == 0.0 and all(lr > 0 for _, _, lr in steps[1:])
    assert steps[5][2] == pytest.approx(0.1)  # t = 0.5 epochs: half way up the ramp
    # epoch 0's LR, averaged over its images: 0.02·k at batch k, nine batches of 64 and one of 24
    assert result.history[0]["lr"] == pytest.approx((0.02 * 36 * 64 + 0.18 * 24) / 600, rel=1e-12)
    torch.manual_seed(0)
    assert not torch.equal(lenet().state_dict()["0.weight"], result.model.state_dict()["0.weight"])


def test_divergence_stops_and_is_recorded(splits) -> None:
    train, test = splits
    result = fit(S.Constant(1e6), train, {"test": test}, seed=0, opts=OPTS)
    assert result.diverged
    assert "non-finite training loss in epoch 0" in result.message
    assert result.history == []
    summary = summarize([SeedResult.from_fit(0, result)])
    assert summary["diverged"] == 1 and "test_acc" not in summary
    assert summary["per_seed"]["0"]["diverged"] is True


def test_plateau_uses_the_loss_history(splits) -> None:
    train, test = splits
    p = S.Plateau(base_lr=0.3, factor=0.5, patience=0, threshold=10.0)  # threshold 10: never "improves"
    result = fit(p, train, {"test": test}, seed=0, opts=OPTS)
    assert [r["lr"] for r in result.history] == pytest.approx([0.3, 0.15, 0.075])


def test_summary_is_mean_std_ci_and_per_seed(splits) -> None:
    train, test = splits
    results = [SeedResult.from_fit(s, fit(S.Constant(0.3), train, {"test": test}, seed=s, opts=OPTS)) for s in (0, 1)]
    summary = summarize(results)
    accs = [r.final["test_acc"] for r in results]
    assert summary["n"] == 2 and summary["seeds"] == [0, 1]
    assert summary["test_acc"]["mean"] == pytest.approx(sum(accs) / 2)
    assert summary["test_acc"]["std"] == pytest.approx(abs(accs[0] - accs[1]) / 2 ** 0.5)  # sample std
    half = 12.706204736174698 * summary["test_acc"]["std"] / 2 ** 0.5  # t(0.975, 1 df)
    assert summary["test_acc"]["ci95_high"] == pytest.approx(summary["test_acc"]["mean"] + half)
    assert [summary["per_seed"][k]["test_acc"] for k in ("0", "1")] == accs
    history = mean_history(results)
    assert history[0]["train_loss"] == pytest.approx(
        (results[0].history[0]["train_loss"] + results[1].history[0]["train_loss"]) / 2)
    assert history[0]["test_acc_std"] == pytest.approx(
        abs(results[0].history[0]["test_acc"] - results[1].history[0]["test_acc"]) / 2 ** 0.5)


def test_paired_seeds_same_init_and_data_order_for_every_schedule(splits, monkeypatch) -> None:
    """Seed s: every schedule starts from the same weights and sees the batches in the same order."""
    train, test = splits
    seen: dict[str, list] = {}
    current = []

    def record_init(seed: int):
        model = init_model(seed)
        current.append(("init", {k: v.clone() for k, v in model.state_dict().items()}))
        return model

    def record_order(generator, n: int):
        order = epoch_order(generator, n)
        current.append(("order", order.clone()))
        return order

    init_model, epoch_order = trainer.init_model, trainer.epoch_order
    monkeypatch.setattr(trainer, "init_model", record_init)
    monkeypatch.setattr(trainer, "epoch_order", record_order)
    runs = {"cosine-0": (S.Cosine(0.2, 0.02, 3), 0), "factor-0": (S.Factor(0.6, 0.8, 0.01), 0),
            "cosine-1": (S.Cosine(0.2, 0.02, 3), 1)}
    for name, (schedule, seed) in runs.items():
        current = []
        fit(schedule, train, {"test": test}, seed=seed, opts=OPTS)
        seen[name] = current

    def same(a, b) -> bool:
        return all(ka == kb and (all(torch.equal(a_[k], b_[k]) for k in a_) if ka == "init" else torch.equal(a_, b_))
                   for (ka, a_), (kb, b_) in zip(a, b))

    assert [k for k, _ in seen["cosine-0"]] == ["init", "order", "order", "order"]  # 3 epochs
    assert same(seen["cosine-0"], seen["factor-0"])      # same seed, another schedule: identical
    assert not same(seen["cosine-0"], seen["cosine-1"])  # another seed: other init and order


def test_schedule_free_evaluates_and_returns_the_averaged_weights(splits, monkeypatch) -> None:
    train, test = splits
    plan = build_plan(parse_spec("sf", {"type": "constant", "lr": 0.5, "warmup": 1,
                                        "optimizer": "schedule_free_sgd"}), steps_per_epoch=10)
    made, seen, stepped = [], [], []
    real_make, real_evaluate = trainer.make_optimizer, trainer.evaluate

    def spy_make(*args, **kwargs):
        made.append(real_make(*args, **kwargs))
        return made[-1]

    def spy_evaluate(model, *args, **kwargs):
        opt = made[0]
        z = [opt.state[p]["z"] for p in opt.param_groups[0]["params"]]
        seen.append((opt.param_groups[0]["train_mode"],
                     any(not torch.equal(p, zp) for p, zp in zip(model.parameters(), z)),
                     [p.detach().clone() for p in model.parameters()]))
        return real_evaluate(model, *args, **kwargs)

    class Recorder(Callback):
        def on_step(self, step: int, t: float, lr: float) -> None:
            stepped.append(lr)

    monkeypatch.setattr(trainer, "make_optimizer", spy_make)
    monkeypatch.setattr(trainer, "evaluate", spy_evaluate)
    opts = FitOptions(epochs=3, batch_size=64, progress=False, momentum=0.9)
    result = fit(plan, train, {"test": test}, seed=0, opts=opts, callbacks=[Recorder()])
    assert type(made[0]).__name__ == "SGDScheduleFree"
    assert len(seen) == 3
    # every evaluation ran in eval mode, on the average x (which differs from the SGD sequence z)
    assert all(mode is False and differs for mode, differs, _ in seen)
    # the returned model (what is saved) holds the averaged weights that were evaluated last
    assert all(torch.equal(p, q) for p, q in zip(result.model.parameters(), seen[-1][2]))
    # the logged LR is what the optimizer applied: its own warmup over 10 steps, then the constant
    assert stepped[:10] == pytest.approx([0.05 * (k + 1) for k in range(10)])
    assert set(stepped[10:]) == {0.5} and made[0].param_groups[0]["scheduled_lr"] == 0.5
    assert result.history[-1]["train_acc"] > 0.3  # it learns the toy task (chance: 0.1)


@pytest.mark.parametrize("channels_last", [True, False])
def test_pool_before_inplace_relu_trains_bit_identical_to_the_articles_order(splits, channels_last) -> None:
    """model.forward pools before ReLU (in place); they commute, so 25 SGD steps give the same weights."""
    from lrsched.training.model import forward

    train, _ = splits
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x_all = train.x.contiguous(memory_format=fmt)
    nets = []
    for step_fn in (lambda net, x: net(x), forward):  # the article's Conv-ReLU-Pool module, then ours
        torch.manual_seed(4)
        net = lenet().to(memory_format=fmt)
        opt = torch.optim.SGD(net.parameters(), lr=0.3, momentum=0.9)
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(4))
        for i in range(25):
            idx = order[(i * 32) % 576:(i * 32) % 576 + 32]
            loss = torch.nn.functional.cross_entropy(step_fn(net, x_all[idx]), train.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        nets.append(net)
    article, ours = nets
    torch.manual_seed(4)
    assert not torch.equal(lenet().state_dict()["3.weight"], ours.state_dict()["3.weight"])  # it did train
    assert all(torch.equal(a, b) for a, b in zip(article.state_dict().values(), ours.state_dict().values()))
    with torch.no_grad():
        assert torch.equal(article(x_all[:64]), forward(ours, x_all[:64]))


def test_conv1_padded_to_8_channels_is_bit_identical_and_stays_channels_last(splits) -> None:
    """channels_last: conv1 runs with two zero filters more; same pooled map, same conv1 gradients."""
    from lrsched.training import model

    train, _ = splits
    x = train.x[:256].contiguous(memory_format=torch.channels_last)
    torch.manual_seed(5)
    conv1 = lenet().to(memory_format=torch.channels_last)[0]
    results = []
    for padded in (True, False):  # False: 6 output channels, as in the article's module
        conv1.zero_grad(set_to_none=True)
        out = model._conv1_pool(conv1, x, channels_last=padded)
        upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        upstream = upstream.contiguous(memory_format=torch.channels_last)
        out.backward(upstream)
        results.append((out.detach(), conv1.weight.grad.clone(), conv1.bias.grad.clone()))
    (fast, *fast_grads), (plain, *plain_grads) = results
    assert fast.shape == (256, 6, 14, 14) and fast.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(fast, plain)
    assert all(torch.equal(a, b) for a, b in zip(fast_grads, plain_grads))
    # the narrowing's gradient is channels_last, so the pool's backward need not transpose it
    pooled = torch.randn(2, 8, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
    model._FirstChannels.apply(pooled, 6).sum().backward()
    assert pooled.grad.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(pooled.grad[:, :6], torch.ones(2, 6, 4, 4)) and not pooled.grad[:, 6:].any()


def test_fit_trains_through_the_fast_forward(splits, monkeypatch) -> None:
    train, test = splits
    calls = []
    real = trainer.forward
    monkeypatch.setattr(trainer, "forward", lambda net, x: calls.append(len(x)) or real(net, x))
    fit(S.Constant(0.3), train, {"test": test}, seed=0, opts=FitOptions(epochs=1, batch_size=64, progress=False))
    assert calls[:10] == [64] * 9 + [600 - 9 * 64]  # every training batch, then the evaluation
    assert len(calls) == 10 + 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run_repeats_bit_for_bit_and_records_the_gpu(splits) -> None:
    from lrsched.core.pinning import environment

    train, test = splits
    train, test = train.to(torch.device("cuda")), test.to(torch.device("cuda"))
    a = fit(S.Cosine(0.2, 0.02, 2), train, {"test": test}, seed=3, opts=FitOptions(epochs=2, batch_size=64,
                                                                                   progress=False))
    b = fit(S.Cosine(0.2, 0.02, 2), train, {"test": test}, seed=3, opts=FitOptions(epochs=2, batch_size=64,
                                                                                   progress=False))
    assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    env = environment()
    assert env["gpu"] and env["deterministic_algorithms"] is True and env["cudnn_benchmark"] is False
