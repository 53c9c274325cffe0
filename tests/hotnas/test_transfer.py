"""OT representation transfer: the known answers of spec representation-transfer.md section 5."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hotnas.supernet import DigitsNet, evaluate, train_steps
from hotnas.transfer import (
    carry_over,
    depth_pairs,
    hidden_representations,
    init_after_jump,
    layer_distance,
    representation_distance,
    transfer,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: torch on one thread


def _mlp(widths, seed, dtype=torch.float64):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).to(dtype)


def test_permuted_neurons_give_zero_distance_at_every_layer():
    net = _mlp([5, 7, 6, 3], seed=0)
    perm = _mlp([5, 7, 6, 3], seed=0)
    p1, p2 = torch.randperm(7, generator=torch.Generator().manual_seed(1)), torch.tensor([3, 5, 0, 1, 4, 2])
    with torch.no_grad():
        perm[0].weight.copy_(net[0].weight[p1]), perm[0].bias.copy_(net[0].bias[p1])
        perm[2].weight.copy_(net[2].weight[p2][:, p1]), perm[2].bias.copy_(net[2].bias[p2])
        perm[4].weight.copy_(net[4].weight[:, p2])
    x = torch.randn(64, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(net(x), perm(x), atol=1e-12)  # the same function
    hs, hp = hidden_representations(net, x), hidden_representations(perm, x)
    assert len(hs) == 2
    for a, b in zip(hs, hp):
        assert ((a - b) ** 2).mean() > 1e-3  # neuron by neuron they differ
        assert abs(float(representation_distance(a, b).detach())) < 1e-12


def test_single_neurons_and_common_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1, 9)), rng.normal(size=(1, 9))
    assert layer_distance(a, b) == pytest.approx(((a - b) ** 2).sum() / 9, rel=1e-12)
    A = rng.normal(size=(6, 11))
    for c in (0.5, -2.0):
        assert layer_distance(A, A + c) == pytest.approx(c * c, rel=1e-10)


def test_duplicated_neurons_and_unequal_widths():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(5, 8))
    assert abs(layer_distance(A, np.concatenate([A, A]))) < 1e-12  # the "double the filters" morphism
    assert layer_distance(np.array([[0.0], [2.0]]), np.array([[1.0]])) == pytest.approx(1.0, abs=1e-12)


def test_symmetric_nonnegative_and_sinkhorn_tends_to_emd():
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(6, 10)), rng.normal(size=(4, 10)) + 0.3
    d = layer_distance(A, B)
    assert d > 0 and d == pytest.approx(layer_distance(B, A), rel=1e-12)
    gaps = [layer_distance(A, B, solver="sinkhorn", reg=r) - d for r in (1.0, 0.1, 0.01, 0.001)]
    assert all(abs(g1) >= abs(g2) - 1e-12 for g1, g2 in zip(gaps, gaps[1:]))
    assert abs(gaps[0]) > 1e-3 and abs(gaps[-1]) < 1e-6
    assert layer_distance(A, A, solver="sinkhorn", reg=1.0) > 0  # the entropic value is biased


def test_gradient_matches_envelope_formula_and_finite_differences():
    g = torch.Generator().manual_seed(3)
    A = torch.randn(5, 7, dtype=torch.float64, generator=g)
    B = torch.randn(4, 7, dtype=torch.float64, generator=g).requires_grad_(True)
    d, P = layer_distance(A, B, return_plan=True)
    (grad,) = torch.autograd.grad(layer_distance(A, B), B)
    b = torch.full((4,), 0.25, dtype=torch.float64)
    formula = (2.0 / 7) * (b[:, None] * B.detach() - P.T @ A)
    assert torch.allclose(grad, formula, atol=1e-12)
    eps = 1e-6
    fd = torch.zeros_like(B)
    for idx in np.ndindex(*B.shape):
        Bp, Bm = B.detach().clone(), B.detach().clone()
        Bp[idx] += eps
        Bm[idx] -= eps
        fd[idx] = (layer_distance(A, Bp) - layer_distance(A, Bm)) / (2 * eps)
    assert torch.allclose(grad, fd, atol=1e-7)


def test_gradient_flows_to_student_weights():
    x = torch.randn(32, 4, dtype=torch.float64)
    teacher, student = _mlp([4, 6, 2], seed=0), _mlp([4, 9, 2], seed=1)
    a = hidden_representations(teacher, x)[0].detach()
    representation_distance(a, hidden_representations(student, x)[0]).backward()
    assert student[0].weight.grad is not None and student[0].weight.grad.abs().sum() > 0


def test_zscore_is_invariant_to_per_neuron_affine_maps():
    rng = np.random.default_rng(4)
    A, B = rng.normal(size=(5, 20)), rng.normal(size=(6, 20))
    B2 = B.copy()
    B2[2] = 3.7 * B2[2] - 1.5
    assert layer_distance(A, B2, normalize="zscore") == pytest.approx(layer_distance(A, B, normalize="zscore"),
                                                                      rel=1e-10)
    assert abs(layer_distance(A, B2) - layer_distance(A, B)) > 1e-3
    for norm in ("center", "l2"):  # all normalisations keep D(A, A) = 0
        assert abs(layer_distance(A, A[::-1], normalize=norm)) < 1e-12


def test_convolutional_layers_flatten_or_pool():
    g = torch.Generator().manual_seed(5)
    h = torch.randn(8, 4, 5, 5, generator=g)
    perm = h[:, torch.tensor([2, 0, 3, 1])]
    assert float(representation_distance(h, perm)) < 1e-10
    # different resolutions: both pooled to 1x1, so a 2x2 average pool of h matches h
    assert float(representation_distance(h[..., :4, :4], F.avg_pool2d(h[..., :4, :4], 2))) < 1e-10


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="same n_e"):
        layer_distance(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="normalize"):
        layer_distance(np.zeros((2, 3)), np.zeros((2, 3)), normalize="max")
    with pytest.raises(ValueError, match="solver"):
        layer_distance(np.zeros((2, 3)), np.zeros((2, 3)), solver="lp")
    with pytest.raises(ValueError, match="labels"):
        transfer(_mlp([3, 4, 2], 0), _mlp([3, 5, 2], 1), torch.zeros(4, 3, dtype=torch.float64), 1,
                 mode="regularise")


def test_depth_pairs():
    s = [torch.Size([8, 4, 8, 8])] * 4 + [torch.Size([8, 4, 4, 4])] * 3
    assert depth_pairs(s, s) == [(i, i) for i in range(7)]
    dense = [torch.Size([8, 3])]
    assert depth_pairs(dense * 2, dense * 4) == [(0, 0), (0, 1), (1, 2), (1, 3)]
    assert depth_pairs(dense * 3, dense) == [(2, 0)]


def _toy_task(seed):
    from hotnas.datasets import load_digits_splits

    d = load_digits_splits(0, dtype=torch.float64)
    return d.x_train.flatten(1), d.y_train, d.x_val.flatten(1), d.y_val


def test_transfer_lowers_the_distance_and_helps_fine_tuning():
    """Spec test 9: teacher MLP (two hidden layers of 32), student of width 48, several seeds."""
    x, y, xv, yv = _toy_task(0)
    wins = 0
    for seed in range(3):
        teacher = _mlp([64, 32, 32, 10], seed=seed)
        train_steps(teacher, x, y, 150, lr=0.01, generator=torch.Generator().manual_seed(seed))
        students = [_mlp([64, 48, 48, 10], seed=100 + seed) for _ in range(2)]
        students[1].load_state_dict(students[0].state_dict())
        res = transfer(teacher, students[0], x[:256], 100, lr=0.01, normalize="none")
        assert res.distance_after < 0.3 * res.distance_before
        assert res.history[-1] < res.history[0]
        losses = []
        for student in students:
            train_steps(student, x, y, 10, lr=0.01, generator=torch.Generator().manual_seed(seed))
            losses.append(evaluate(student, xv, yv)[0])
        wins += losses[0] < losses[1]
    assert wins == 3


def test_regularise_mode_trains_on_labels_and_lowers_the_distance():
    x, y, _, _ = _toy_task(0)
    teacher = _mlp([64, 32, 32, 10], seed=0)
    train_steps(teacher, x, y, 100, lr=0.01, generator=torch.Generator().manual_seed(0))
    student = _mlp([64, 48, 48, 10], seed=1)
    loss0 = F.cross_entropy(student(x), y).item()
    res = transfer(teacher, student, (x[:256], y[:256]), 60, mode="regularise", lam=1.0, lr=0.01)
    assert res.distance_after < res.distance_before
    assert F.cross_entropy(student(x), y).item() < loss0


ARCH_A = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
ARCH_B = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"


def test_carry_over_copies_shared_weights_and_morph_preserves_the_function():
    old = DigitsNet(ARCH_A, seed=0)
    new = DigitsNet(ARCH_B, seed=1)
    copied = carry_over(old, new)
    assert "stem.weight" in copied and "head.bias" in copied and "cells.0.edges.2.nor_conv_3x3" not in copied
    x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    new2 = DigitsNet(ARCH_B, seed=1)
    assert "cells.0.edges.2.nor_conv_3x3" in carry_over(old, new2, morph=True)
    assert torch.allclose(old(x), new2(x), atol=1e-5)  # 1x1 -> zero-padded 3x3 is function-preserving
    assert not torch.allclose(old(x), new(x), atol=1e-3)


def test_init_after_jump_modes():
    from hotnas.datasets import load_digits_splits

    data = load_digits_splits(0)
    old = DigitsNet(ARCH_A, seed=0)
    train_steps(old, data.x_train, data.y_train, 30, generator=torch.Generator().manual_seed(0))
    fresh, info = init_after_jump(old, ARCH_A, ARCH_B, "fresh", seed=3)
    assert info["copied"] == 0 and not torch.equal(fresh.stem.weight, old.stem.weight)
    carry, info = init_after_jump(old, ARCH_A, ARCH_B, "carry", seed=3)
    assert info["copied"] > 0 and torch.equal(carry.stem.weight, old.stem.weight)
    moved, info = init_after_jump(old, ARCH_A, ARCH_B, "transfer", seed=3, probe=data.x_train[:128], steps=10)
    assert info["distance_after"] < info["distance_before"]
    new_only, info = init_after_jump(old, ARCH_A, ARCH_B, "transfer", seed=3, probe=data.x_train[:128], steps=10,
                                     trainable="new")
    assert torch.equal(new_only.stem.weight, old.stem.weight)  # carried weights stay put
    assert info["distance_after"] < info["distance_before"]
    with pytest.raises(ValueError, match="mode"):
        init_after_jump(old, ARCH_A, ARCH_B, "copy")
    with pytest.raises(ValueError, match="old_arch"):
        init_after_jump(old, ARCH_B, ARCH_A, "carry")
