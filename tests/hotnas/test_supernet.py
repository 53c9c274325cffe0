"""The digits network and its weight-sharing supernet: batched (vmap) = per-particle loop, the
supernet restricted to one architecture = the stand-alone network, seeded reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hotnas.datasets import load_digits_splits
from hotnas.spaces.nb201 import NB201Space
from hotnas.supernet import (
    DigitsNet,
    NetConfig,
    SuperNet,
    arch_seed,
    decode_arch,
    encode_arch,
    train_from_scratch,
)

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: torch on one thread


@pytest.fixture(scope="module")
def data():
    return load_digits_splits(0)


@pytest.fixture(scope="module")
def population():
    rng = np.random.default_rng(0)
    space = NB201Space()
    archs = [space.sample(rng) for _ in range(5)] + [ALL_CONV, ALL_NONE]
    return archs


def test_digits_splits_are_seeded_stratified_and_standardised():
    a, b, c = load_digits_splits(0), load_digits_splits(0), load_digits_splits(1)
    assert a.x_train.shape == (1077, 1, 8, 8) and a.x_val.shape[0] == 360 and a.x_test.shape[0] == 360
    assert torch.equal(a.x_val, b.x_val) and not torch.equal(a.x_val, c.x_val)
    assert abs(a.x_train.mean().item()) < 1e-5
    assert torch.bincount(a.y_val).min() >= 35  # every class present in every split
    with pytest.raises(ValueError, match="val_fraction"):
        load_digits_splits(0, val_fraction=0.6, test_fraction=0.5)


def test_encode_decode_round_trip(population):
    onehot = encode_arch(population)
    assert onehot.shape == (len(population), 6, 5) and torch.all(onehot.sum(-1) == 1)
    assert decode_arch(onehot) == population
    assert arch_seed(0, ALL_CONV) == arch_seed(0, ALL_CONV) != arch_seed(1, ALL_CONV)


def test_supernet_on_one_architecture_equals_the_standalone_network(data, population):
    sn = SuperNet()
    theta = sn.init(len(population), seed=1)
    x = data.x_val[:96]
    for i, arch in enumerate(population):
        net = sn.to_network(theta[i], arch)
        assert torch.allclose(sn.logits(theta[i], encode_arch(arch), x), net(x), atol=1e-5)
        # the stand-alone network holds only what its architecture uses; it goes back in place
        back = sn.from_network(net, theta[i])
        assert torch.equal(back, theta[i])
        # and the supernet's gradient is the stand-alone network's on those weights, zero elsewhere
        torch.nn.functional.cross_entropy(net(x), data.y_val[:96]).backward()
        _, grads = sn.loss_and_grad(theta[i:i + 1], encode_arch([arch]), x, data.y_val[:96])
        g = sn.unflatten(grads[0])
        own = dict(net.named_parameters())
        for name in sn.names:
            expected = own[name].grad if name in own else None
            expected = torch.zeros_like(g[name]) if expected is None else expected  # None: off every path
            assert torch.allclose(g[name], expected, atol=1e-5), name


def test_batched_loss_and_gradient_equal_the_per_particle_loop(data, population):
    sn = SuperNet(weight_decay=1e-3)
    P = len(population)
    theta = sn.init(P, seed=2)
    archs = encode_arch(population)
    xb, yb = data.x_train[:64], data.y_train[:64]
    values, grads = sn.loss_and_grad(theta, archs, xb, yb)
    assert values.shape == (P,) and grads.shape == (P, sn.dim)
    for i in range(P):
        t = theta[i].clone().requires_grad_(True)
        loss = sn.loss(t, archs[i], xb, yb)
        loss.backward()
        assert values[i].item() == pytest.approx(loss.item(), abs=1e-5)
        assert torch.allclose(grads[i], t.grad, atol=1e-5)
    # the jump evaluation: the same losses without gradients, from one batched call
    assert torch.allclose(sn.losses(theta, archs, xb, yb), values, atol=1e-6)
    # per-particle minibatches
    xs = torch.stack([data.x_train[64 * i: 64 * (i + 1)] for i in range(P)])
    ys = torch.stack([data.y_train[64 * i: 64 * (i + 1)] for i in range(P)])
    per = sn.losses(theta, archs, xs, ys)
    for i in range(P):
        assert per[i].item() == pytest.approx(sn.loss(theta[i], archs[i], xs[i], ys[i]).item(), abs=1e-5)


def test_unused_weights_get_only_weight_decay(data):
    sn = SuperNet(weight_decay=0.1)
    theta = sn.init(1, seed=0)
    _, grads = sn.loss_and_grad(theta, encode_arch([ALL_NONE]), data.x_train[:64], data.y_train[:64])
    used = {n for n, _ in DigitsNet(ALL_NONE).named_parameters()}
    g, t = sn.unflatten(grads[0]), sn.unflatten(theta[0])
    assert all(torch.allclose(g[n], 0.1 * t[n]) for n in sn.names if n not in used)


def test_step_is_sgd_or_seeded_langevin(data, population):
    sn = SuperNet()
    theta = sn.init(3, seed=0)
    archs = encode_arch(population[:3])
    xb, yb = data.x_train[:64], data.y_train[:64]
    values, grads = sn.loss_and_grad(theta, archs, xb, yb)
    new, f = sn.step(theta, archs, xb, yb, lr=0.1)
    assert torch.allclose(new, theta - 0.1 * grads) and torch.equal(f, values)
    a, _ = sn.step(theta, archs, xb, yb, lr=0.1, temperature=0.01, generator=torch.Generator().manual_seed(5))
    b, _ = sn.step(theta, archs, xb, yb, lr=0.1, temperature=0.01, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.allclose(a, new)
    noise = (a - new) / (2 * 0.1 * 0.01) ** 0.5
    assert abs(noise.std().item() - 1.0) < 0.05
    # SGD steps on a fixed minibatch lower every particle's loss
    for _ in range(5):
        theta, _ = sn.step(theta, archs[:3], xb, yb, lr=0.05)
    assert torch.all(sn.losses(theta, archs, xb, yb) < values + 1e-6)


def test_init_is_seeded_per_particle(population):
    sn = SuperNet()
    a, b = sn.init(4, seed=7), sn.init(4, seed=7)
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])
    same = sn.init(3, seed=7, same=True)
    assert torch.equal(same[0], same[2])


def test_bad_shapes_are_named(data):
    sn = SuperNet()
    theta = sn.init(2, seed=0)
    with pytest.raises(ValueError, match="theta"):
        sn.losses(theta[:, :10], encode_arch([ALL_CONV] * 2), data.x_val, data.y_val)
    with pytest.raises(ValueError, match="archs"):
        sn.losses(theta, encode_arch([ALL_CONV]), data.x_val, data.y_val)
    with pytest.raises(ValueError, match="mask"):
        DigitsNet(ALL_CONV)(data.x_val, encode_arch(ALL_CONV))
    with pytest.raises(ValueError, match="reduce_after"):
        NetConfig(n_cells=2, reduce_after=(1,))


def test_training_from_scratch_is_reproducible_from_the_seed(data):
    a = train_from_scratch(ALL_CONV, data, epochs=1, seed=3)
    b = train_from_scratch(ALL_CONV, data, epochs=1, seed=3)
    c = train_from_scratch(ALL_CONV, data, epochs=1, seed=4)
    assert (a.val_acc, a.test_acc, a.val_loss) == (b.val_acc, b.test_acc, b.val_loss)
    assert a.val_loss != c.val_loss
    none = train_from_scratch(ALL_NONE, data, epochs=1, seed=3)
    assert none.val_acc < 20 < a.val_acc  # the empty cell only learns the class prior
