"""Unit tests of gan_notes.objective: every term that discriminator_step_loss and
generator_step_loss assemble, on fixed inputs and tiny deterministic float64 networks, against
references written out here with torch ops and torch.autograd (no call into gan_notes.losses,
penalties, remedies or unrolled), so that a flipped sign, a wrong constant or swapped roles
fail; values and gradients in the trained player's parameters are compared. Also: Method's
validation, and the functions under torch.func.vmap against a Python loop."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from gan_notes.objective import Method, Nets, d_input, discriminator_step_loss, generator_step_loss
from _references import autograd_norms  # noqa: E402

B, LATENT, DIM, K_MIX = 6, 3, 2, 3  # packs per D batch, latent and data dimension, mixture components
DT = torch.float64
LOSSES = ("minimax", "non_saturating", "lsgan", "wgan", "hinge")
TWO_D = ("minimax", "non_saturating", "hinge", "wgan")


# --- fixed players and draws -----------------------------------------------------------------


def _net(seed, sizes):
    """An MLP (Linear, Tanh, ..., Linear) with weights drawn from its own generator, float64."""
    g = torch.Generator().manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b).to(DT)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=g, dtype=DT) / math.sqrt(a))
            lin.bias.copy_(0.3 * torch.randn(b, generator=g, dtype=DT))
        layers += [lin, nn.Tanh()]
    return nn.Sequential(*layers[:-1])


def _players(pack=1, seed=0, began=False):
    """G, D, D2 (a second discriminator) and C (the mixture's classifier)."""
    d_in = pack * DIM
    d_sizes = (d_in, 4, d_in) if began else (d_in, 5, 1)
    return {
        "G": _net(10 * seed, (LATENT, 5, DIM)),
        "D": _net(10 * seed + 1, d_sizes),
        "D2": _net(10 * seed + 2, d_sizes),
        "C": _net(10 * seed + 3, (DIM, 5, K_MIX)),
    }


def _draws(players, pack=1, seed=0):
    """One step's random draws, as the loops pass them: n = pack * B rows."""
    g = torch.Generator().manual_seed(100 + seed)
    n = pack * B
    z = torch.randn(n, LATENT, generator=g, dtype=DT)
    r = {
        "real": torch.randn(n, DIM, generator=g, dtype=DT) * 1.5 + 0.5,
        "z": z,
        "noise_real": torch.randn(n, DIM, generator=g, dtype=DT),
        "noise_fake": torch.randn(n, DIM, generator=g, dtype=DT),
        "eps": torch.rand(B, 1, generator=g, dtype=DT),
        "u": torch.rand(B, pack * DIM, generator=g, dtype=DT),
        "z2": torch.randn(n, LATENT, generator=g, dtype=DT),
        "k": torch.tensor(0.3, dtype=DT),
    }
    with torch.no_grad():
        r["fake"] = players["G"](z)
    return r


# --- independent references ------------------------------------------------------------------


def ref_d(kind, a_real, a_fake):
    """D's loss, the textbook formulas with D = sigmoid(a) for the logistic losses."""
    if kind in ("minimax", "non_saturating"):
        return -torch.log(torch.sigmoid(a_real)).mean() - torch.log(1 - torch.sigmoid(a_fake)).mean()
    if kind == "lsgan":
        return ((a_real - 1) ** 2).mean() + (a_fake**2).mean()
    if kind == "wgan":
        return a_fake.mean() - a_real.mean()
    assert kind == "hinge"
    return torch.clamp(1 - a_real, min=0).mean() + torch.clamp(1 + a_fake, min=0).mean()


def ref_g(kind, a_fake):
    if kind == "minimax":
        return torch.log(1 - torch.sigmoid(a_fake)).mean()
    if kind == "non_saturating":
        return -torch.log(torch.sigmoid(a_fake)).mean()
    if kind == "lsgan":
        return ((a_fake - 1) ** 2).mean()
    return -a_fake.mean()  # wgan, hinge


def ref_g_second(kind, a2_fake):
    """G's loss against a second discriminator whose positive class is G's samples: G wants
    D2 to call them data, i.e. low D2 = sigmoid(a2)."""
    if kind == "minimax":
        return torch.log(torch.sigmoid(a2_fake)).mean()
    if kind == "non_saturating":
        return -torch.log(1 - torch.sigmoid(a2_fake)).mean()
    return a2_fake.mean()  # wgan, hinge


def ref_pack(x, m):
    """PacGAN: rows i*m .. i*m+m-1 concatenated into row i."""
    return torch.stack([torch.cat([x[i * m + j] for j in range(m)]) for i in range(x.shape[0] // m)])


def ref_penalty(name, critic, pos, neg, eps, u):
    """GP between pos and neg (eps on pos), R1 at pos, DRAGAN at pos + 0.5 std(pos) u."""
    if name == "gp":
        return ((autograd_norms(critic, eps * pos + (1 - eps) * neg) - 1) ** 2).mean()
    if name == "r1":
        return (autograd_norms(critic, pos) ** 2).mean()
    assert name == "dragan"
    return ((autograd_norms(critic, pos + 0.5 * pos.std() * u) - 1) ** 2).mean()


def ref_mixture_ce(logits):
    """Cross-entropy of row i against class i mod K."""
    return F.cross_entropy(logits, torch.arange(logits.shape[0]) % logits.shape[1])


def ref_mode_seeking(x1, x2, z1, z2):
    return 1 / ((x1 - x2).abs().mean() / (z1 - z2).abs().mean() + 1e-5)


def _assert_same(got, expected, params):
    """Equal values, and equal gradients in ``params`` (the trained player's parameters)."""
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    params = list(params)
    g_got = torch.autograd.grad(got, params, retain_graph=True, allow_unused=True)
    g_exp = torch.autograd.grad(expected, params, retain_graph=True, allow_unused=True)
    for a, b in zip(g_got, g_exp):
        a = torch.zeros(()) if a is None else a
        b = torch.zeros(()) if b is None else b
        torch.testing.assert_close(a.to(DT), b.to(DT), rtol=1e-9, atol=1e-12)


def _d_params(P, *names):
    return [p for n in names for p in P[n].parameters()]


# --- D step ----------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", LOSSES)
def test_d_step_each_loss(loss):
    P = _players()
    r = _draws(P)
    got, terms = discriminator_step_loss(Method(loss=loss), Nets(P), r)
    a_real, a_fake = P["D"](r["real"]), P["D"](r["fake"])
    expected = ref_d(loss, a_real, a_fake)
    _assert_same(got, expected, _d_params(P, "D"))
    torch.testing.assert_close(terms["d_loss"], expected)
    assert float(terms["d2_loss"]) == 0.0
    torch.testing.assert_close(terms["d_real"], torch.sigmoid(a_real).mean())
    torch.testing.assert_close(terms["d_fake"], torch.sigmoid(a_fake).mean())


@pytest.mark.parametrize("loss", TWO_D)
def test_d_step_two_discriminators_swap_roles(loss):
    P = _players()
    r = _draws(P)
    got, terms = discriminator_step_loss(Method(loss=loss, two_discriminators=True), Nets(P), r)
    first = ref_d(loss, P["D"](r["real"]), P["D"](r["fake"]))
    second = ref_d(loss, P["D2"](r["fake"]), P["D2"](r["real"]))  # D2's positive class: G's samples
    _assert_same(got, first + second, _d_params(P, "D", "D2"))
    torch.testing.assert_close(terms["d_loss"], first)
    torch.testing.assert_close(terms["d2_loss"], second)


def _ref_d2gan_d(P, x_real, x_fake, alpha, beta):
    d1r, d1f = F.softplus(P["D"](x_real)), F.softplus(P["D"](x_fake))
    d2r, d2f = F.softplus(P["D2"](x_real)), F.softplus(P["D2"](x_fake))
    return -alpha * torch.log(d1r).mean() + d1f.mean() + d2r.mean() - beta * torch.log(d2f).mean()


def test_d_step_d2gan_with_the_paper_constants():
    P = _players()
    r = _draws(P)
    got, terms = discriminator_step_loss(Method(loss="d2gan"), Nets(P), r)
    # Nguyen et al. 2017: alpha = 0.2, beta = 0.1.
    expected = _ref_d2gan_d(P, r["real"], r["fake"], 0.2, 0.1)
    _assert_same(got, expected, _d_params(P, "D", "D2"))
    torch.testing.assert_close(terms["d_loss"], expected)


def test_d_step_d2gan_constants_and_instance_noise():
    P = _players()
    r = _draws(P)
    m = Method(loss="d2gan", d2gan_alpha=0.7, d2gan_beta=0.4, instance_noise=0.3)
    got, _ = discriminator_step_loss(m, Nets(P), r)
    x_real, x_fake = r["real"] + 0.3 * r["noise_real"], r["fake"] + 0.3 * r["noise_fake"]
    _assert_same(got, _ref_d2gan_d(P, x_real, x_fake, 0.7, 0.4), _d_params(P, "D", "D2"))


def test_d_step_began():
    P = _players(began=True)
    r = _draws(P)
    got, terms = discriminator_step_loss(Method(loss="began"), Nets(P), r)
    l_real = (r["real"] - P["D"](r["real"])).abs().mean(dim=1)
    l_fake = (r["fake"] - P["D"](r["fake"])).abs().mean(dim=1)
    expected = l_real.mean() - 0.3 * l_fake.mean()  # L(x) - k_t L(G(z)), k_t = r["k"] = 0.3
    _assert_same(got, expected, _d_params(P, "D"))
    torch.testing.assert_close(terms["l_real"], l_real.mean())
    torch.testing.assert_close(terms["l_fake"], l_fake.mean())


@pytest.mark.parametrize("penalty", ["gp", "r1", "dragan"])
@pytest.mark.parametrize("two", [False, True])
def test_d_step_penalty_weight_and_roles(penalty, two):
    P = _players()
    r = _draws(P)
    m = Method(loss="wgan", penalty=penalty, penalty_weight=2.5, two_discriminators=two)
    got, terms = discriminator_step_loss(m, Nets(P), r)
    real, fake = r["real"], r["fake"]
    expected = ref_d("wgan", P["D"](real), P["D"](fake)) + 2.5 * ref_penalty(penalty, P["D"], real, fake, r["eps"], r["u"])
    if two:
        # D2 is penalised at its own positive batch, the generated samples.
        expected = expected + ref_d("wgan", P["D2"](fake), P["D2"](real))
        expected = expected + 2.5 * ref_penalty(penalty, P["D2"], fake, real, r["eps"], r["u"])
    _assert_same(got, expected, _d_params(P, "D", "D2"))
    # The game terms do not include the penalty.
    torch.testing.assert_close(terms["d_loss"], ref_d("wgan", P["D"](real), P["D"](fake)))


@pytest.mark.parametrize("penalty", ["gp", "r1", "dragan"])
def test_d_step_penalty_on_packed_inputs_without_noise(penalty):
    P = _players(pack=2)
    r = _draws(P, pack=2)
    m = Method(loss="non_saturating", penalty=penalty, penalty_weight=1.5, pack=2, instance_noise=0.3)
    got, _ = discriminator_step_loss(m, Nets(P), r)
    x_real = ref_pack(r["real"] + 0.3 * r["noise_real"], 2)
    x_fake = ref_pack(r["fake"] + 0.3 * r["noise_fake"], 2)
    pen = ref_penalty(penalty, P["D"], ref_pack(r["real"], 2), ref_pack(r["fake"], 2), r["eps"], r["u"])
    _assert_same(got, ref_d("non_saturating", P["D"](x_real), P["D"](x_fake)) + 1.5 * pen, _d_params(P, "D"))


def test_d_step_instance_noise():
    P = _players()
    r = _draws(P)
    got, terms = discriminator_step_loss(Method(loss="lsgan", instance_noise=0.4), Nets(P), r)
    a_real, a_fake = P["D"](r["real"] + 0.4 * r["noise_real"]), P["D"](r["fake"] + 0.4 * r["noise_fake"])
    _assert_same(got, ref_d("lsgan", a_real, a_fake), _d_params(P, "D"))
    torch.testing.assert_close(terms["d_real"], torch.sigmoid(a_real).mean())
    torch.testing.assert_close(terms["d_fake"], torch.sigmoid(a_fake).mean())


def test_d_step_packing():
    P = _players(pack=3)
    r = _draws(P, pack=3)
    got, _ = discriminator_step_loss(Method(loss="hinge", pack=3), Nets(P), r)
    expected = ref_d("hinge", P["D"](ref_pack(r["real"], 3)), P["D"](ref_pack(r["fake"], 3)))
    _assert_same(got, expected, _d_params(P, "D"))
    torch.testing.assert_close(d_input(Method(pack=3), r["real"]), ref_pack(r["real"], 3))


def test_d_step_mixture_classifier_term():
    P = _players()
    r = _draws(P)
    got, terms = discriminator_step_loss(Method(mixture=K_MIX, mixture_beta=0.4), Nets(P), r)
    game = ref_d("non_saturating", P["D"](r["real"]), P["D"](r["fake"]))
    # The classifier minimises its cross-entropy with weight 1 (beta weighs G's term only).
    _assert_same(got, game + ref_mixture_ce(P["C"](r["fake"])), _d_params(P, "D", "C"))
    torch.testing.assert_close(terms["d_loss"], game)


def test_penalties_use_the_module_and_the_game_uses_forward():
    P = _players()
    r = _draws(P)
    nets = Nets(P, forward={"D": lambda x: 2 * P["D"](x)})
    got, _ = discriminator_step_loss(Method(loss="wgan", penalty="r1", penalty_weight=1.0), nets, r)
    expected = ref_d("wgan", 2 * P["D"](r["real"]), 2 * P["D"](r["fake"])) + ref_penalty("r1", P["D"], r["real"], r["fake"], None, None)
    _assert_same(got, expected, _d_params(P, "D"))


# --- G step ----------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", LOSSES)
def test_g_step_each_loss(loss):
    P = _players()
    r = _draws(P)
    got = generator_step_loss(Method(loss=loss), Nets(P), r)
    _assert_same(got, ref_g(loss, P["D"](P["G"](r["z"]))), P["G"].parameters())


@pytest.mark.parametrize("loss", TWO_D)
def test_g_step_two_discriminators(loss):
    P = _players()
    r = _draws(P)
    got = generator_step_loss(Method(loss=loss, two_discriminators=True), Nets(P), r)
    x = P["G"](r["z"])
    _assert_same(got, ref_g(loss, P["D"](x)) + ref_g_second(loss, P["D2"](x)), P["G"].parameters())


def test_g_step_d2gan():
    P = _players()
    r = _draws(P)
    m = Method(loss="d2gan", d2gan_alpha=0.7, d2gan_beta=0.4, instance_noise=0.3)
    got = generator_step_loss(m, Nets(P), r)
    x = P["G"](r["z"]) + 0.3 * r["noise_fake"]
    expected = -F.softplus(P["D"](x)).mean() + 0.4 * torch.log(F.softplus(P["D2"](x))).mean()
    _assert_same(got, expected, P["G"].parameters())
    # the paper's beta = 0.1 by default
    x0 = P["G"](r["z"])
    expected0 = -F.softplus(P["D"](x0)).mean() + 0.1 * torch.log(F.softplus(P["D2"](x0))).mean()
    _assert_same(generator_step_loss(Method(loss="d2gan"), Nets(P), r), expected0, P["G"].parameters())


def test_g_step_began():
    P = _players(began=True)
    r = _draws(P)
    x = P["G"](r["z"])
    _assert_same(generator_step_loss(Method(loss="began"), Nets(P), r), (x - P["D"](x)).abs().mean(), P["G"].parameters())


def test_g_step_instance_noise_and_packing():
    P = _players(pack=2)
    r = _draws(P, pack=2)
    got = generator_step_loss(Method(loss="minimax", instance_noise=0.25, pack=2), Nets(P), r)
    x = ref_pack(P["G"](r["z"]) + 0.25 * r["noise_fake"], 2)
    _assert_same(got, ref_g("minimax", P["D"](x)), P["G"].parameters())


@pytest.mark.parametrize("pack", [1, 2])
def test_g_step_mode_seeking_term(pack):
    P = _players(pack=pack)
    r = _draws(P, pack=pack)
    got = generator_step_loss(Method(mode_seeking=0.7, pack=pack), Nets(P), r)
    x1, x2 = P["G"](r["z"]), P["G"](r["z2"])
    expected = ref_g("non_saturating", P["D"](ref_pack(x1, pack))) + 0.7 * ref_mode_seeking(x1, x2, r["z"], r["z2"])
    _assert_same(got, expected, P["G"].parameters())


def test_g_step_mixture_classifier_term():
    P = _players()
    r = _draws(P)
    got = generator_step_loss(Method(loss="wgan", mixture=K_MIX, mixture_beta=0.4), Nets(P), r)
    x = P["G"](r["z"])
    # MGAN: G *minimises* beta times the classifier's cross-entropy (components move apart).
    _assert_same(got, ref_g("wgan", P["D"](x)) + 0.4 * ref_mixture_ce(P["C"](x)), P["G"].parameters())


@pytest.mark.parametrize("pack", [1, 2])
def test_g_step_feature_matching(pack):
    P = _players(pack=pack)
    r = _draws(P, pack=pack)
    got = generator_step_loss(Method(feature_matching=True, pack=pack), Nets(P), r)
    body = P["D"][:-1]  # D's features: the input of its linear head
    f_real = body(ref_pack(r["real"], pack)).mean(0)
    f_fake = body(ref_pack(P["G"](r["z"]), pack)).mean(0)
    _assert_same(got, ((f_real - f_fake) ** 2).sum(), P["G"].parameters())


def _trained_adam(D, real, fake, lr, betas, eps, steps=2):
    """A torch.optim.Adam on D after a few steps of the WGAN loss (non-zero moments)."""
    opt = torch.optim.Adam(D.parameters(), lr=lr, betas=betas, eps=eps)
    for _ in range(steps):
        opt.zero_grad()
        (D(fake).mean() - D(real).mean()).backward()
        opt.step()
    opt.zero_grad()
    return opt


def _ref_lookahead(D, real, fake, loss, k, state, lr, betas, eps):
    """k Adam steps on D's loss continuing the live state, in D's graph and in fake's, with the
    package's documented denominator sqrt(v_hat + eps^2)."""
    names = [n for n, _ in D.named_parameters()]
    theta = [p.detach() for _, p in D.named_parameters()]
    m = [state[p]["exp_avg"].clone() for p in D.parameters()]
    v = [state[p]["exp_avg_sq"].clone() for p in D.parameters()]
    t0 = int(state[next(iter(D.parameters()))]["step"])
    b1, b2 = betas
    call = lambda th, x: functional_call(D, dict(zip(names, th)), (x,))  # noqa: E731
    for t in range(t0 + 1, t0 + k + 1):
        th = [p if p.requires_grad else p.clone().requires_grad_(True) for p in theta]
        g = torch.autograd.grad(ref_d(loss, call(th, real), call(th, fake)), th, create_graph=True)
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        theta = [p - lr * (mi / (1 - b1**t)) / torch.sqrt(vi / (1 - b2**t) + eps**2) for p, mi, vi in zip(th, m, v)]
    return lambda x: call(theta, x)


@pytest.mark.parametrize("loss, noise", [("non_saturating", 0.0), ("lsgan", 0.3)])
def test_g_step_unrolled_continues_the_live_adam_state(loss, noise):
    P = _players()
    r = _draws(P)
    D = P["D"]
    lr, betas, eps = 0.05, (0.6, 0.95), 1e-2  # not the defaults, so each one must be read
    opt = _trained_adam(D, r["real"], r["fake"], lr, betas, eps)
    params = dict(D.named_parameters())
    before = {n: (opt.state[p]["exp_avg"].clone(), opt.state[p]["exp_avg_sq"].clone()) for n, p in params.items()}
    adam = {
        "exp_avg": {n: opt.state[p]["exp_avg"] for n, p in params.items()},
        "exp_avg_sq": {n: opt.state[p]["exp_avg_sq"] for n, p in params.items()},
        "step": 2, "lr": lr, "betas": betas, "eps": eps,
    }
    got = generator_step_loss(Method(loss=loss, unroll=3, instance_noise=noise), Nets(P), r, adam=adam)
    x = P["G"](r["z"])
    # D's look-ahead plays its game on the clean batches; G's loss is at what D sees.
    d_k = _ref_lookahead(D, r["real"], x, loss, 3, opt.state, lr, betas, eps)
    seen = x + noise * r["noise_fake"]
    _assert_same(got, ref_g(loss, d_k(seen)), P["G"].parameters())
    # the look-ahead moved D (k > 0 matters) ...
    assert not torch.isclose(got, ref_g(loss, D(seen)))
    # ... and read D's optimiser state without changing it, nor D
    for n, p in params.items():
        assert torch.equal(opt.state[p]["exp_avg"], before[n][0]) and torch.equal(opt.state[p]["exp_avg_sq"], before[n][1])
    with pytest.raises(ValueError, match="adam"):
        generator_step_loss(Method(loss=loss, unroll=3), Nets(P), r)


# --- under torch.func.vmap -------------------------------------------------------------------

S = 3
VMAP_METHODS = [
    Method(loss="non_saturating", penalty="gp", pack=2, instance_noise=0.2),
    Method(loss="hinge", two_discriminators=True, penalty="r1", penalty_weight=3.0),
    Method(loss="wgan", mode_seeking=0.5, mixture=K_MIX, penalty="dragan"),
]


@pytest.mark.parametrize("method", VMAP_METHODS, ids=["gp-pack-noise", "two-d-r1", "ms-mixture-dragan"])
def test_step_losses_under_vmap_equal_a_loop(method):
    seeds = [_players(pack=method.pack, seed=s) for s in range(S)]
    draws = [_draws(P, pack=method.pack, seed=s) for s, P in enumerate(seeds)]
    names = ("G", "D", "D2", "C")
    params = {n: stack_module_state([P[n] for P in seeds])[0] for n in names}
    base = {n: copy.deepcopy(seeds[0][n]).to("meta") for n in names}
    r = {k: torch.stack([d[k] for d in draws]) for k in draws[0]}

    def d_loss(p, r):
        return discriminator_step_loss(method, Nets(base, params=p), r)[0]

    def g_loss(p, r):
        return generator_step_loss(method, Nets(base, params=p), r)

    for fn, step in ((d_loss, discriminator_step_loss), (g_loss, generator_step_loss)):
        batched = vmap(fn)(params, r)
        loop = []
        for P, d in zip(seeds, draws):
            out = step(method, Nets(P), d)
            loop.append(out[0] if isinstance(out, tuple) else out)
        torch.testing.assert_close(batched, torch.stack(loop))


def test_unrolled_g_step_under_vmap_with_per_seed_adam_moments_equals_a_loop():
    method = Method(loss="non_saturating", unroll=2)
    seeds = [_players(seed=s) for s in range(S)]
    draws = [_draws(P, seed=s) for s, P in enumerate(seeds)]
    g = torch.Generator().manual_seed(7)
    moments = [
        ({n: 0.05 * torch.randn(p.shape, generator=g, dtype=DT) for n, p in P["D"].named_parameters()},
         {n: 0.01 * torch.rand(p.shape, generator=g, dtype=DT) for n, p in P["D"].named_parameters()})
        for P in seeds
    ]
    settings = {"step": 5, "lr": 0.05, "betas": (0.6, 0.95), "eps": 1e-3}
    names = ("G", "D")
    params = {n: stack_module_state([P[n] for P in seeds])[0] for n in names}
    base = {n: copy.deepcopy(seeds[0][n]).to("meta") for n in names}
    r = {k: torch.stack([d[k] for d in draws]) for k in ("z", "real")}
    m_all = {n: torch.stack([mv[0][n] for mv in moments]) for n in moments[0][0]}
    v_all = {n: torch.stack([mv[1][n] for mv in moments]) for n in moments[0][1]}

    def g_loss(p, r, m, v):
        return generator_step_loss(method, Nets(base, params=p), r, adam={**settings, "exp_avg": m, "exp_avg_sq": v})

    batched = vmap(g_loss)(params, r, m_all, v_all)
    loop = [generator_step_loss(method, Nets(P), d, adam={**settings, "exp_avg": mv[0], "exp_avg_sq": mv[1]})
            for P, d, mv in zip(seeds, draws, moments)]
    torch.testing.assert_close(batched, torch.stack(loop))


# --- Method validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, field",
    [
        (dict(loss="wgan-gp"), ValueError, "loss"),
        (dict(loss=True), ValueError, "loss"),
        (dict(penalty="l2"), ValueError, "penalty"),
        (dict(two_discriminators=1), TypeError, "two_discriminators"),
        (dict(noise_anneal="yes"), TypeError, "noise_anneal"),
        (dict(spectral_norm=0), TypeError, "spectral_norm"),
        (dict(feature_matching=1), TypeError, "feature_matching"),
        (dict(d_steps=True), ValueError, "d_steps"),
        (dict(d_steps=0), ValueError, "d_steps"),
        (dict(d_steps=2.0), ValueError, "d_steps"),
        (dict(pack=True), ValueError, "pack"),
        (dict(pack=0), ValueError, "pack"),
        (dict(mixture=True), ValueError, "mixture"),
        (dict(mixture=-1), ValueError, "mixture"),
        (dict(unroll=True), ValueError, "unroll"),
        (dict(unroll=1.5), ValueError, "unroll"),
        (dict(instance_noise=-0.1), ValueError, "instance_noise"),
        (dict(instance_noise=float("nan")), ValueError, "instance_noise"),
        (dict(instance_noise=True), ValueError, "instance_noise"),
        (dict(mode_seeking=float("inf")), ValueError, "mode_seeking"),
        (dict(penalty_weight=-1.0), ValueError, "penalty_weight"),
        (dict(penalty_weight=True), ValueError, "penalty_weight"),
        (dict(mixture_beta=-0.5), ValueError, "mixture_beta"),
        (dict(clip=0.0), ValueError, "clip"),
        (dict(clip=-0.01), ValueError, "clip"),
    ],
)
def test_method_rejects_bad_fields(kwargs, error, field):
    with pytest.raises(error, match=rf"\b{field}\b"):
        Method(**kwargs)
    with pytest.raises(error, match=rf"\b{field}\b"):
        Method().with_options(**kwargs)  # revalidated


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(loss="lsgan", two_discriminators=True), "two_discriminators"),
        (dict(loss="began", penalty="gp"), "began"),
        (dict(loss="d2gan", pack=2), "d2gan"),
        (dict(loss="d2gan", unroll=1), "d2gan"),
        (dict(loss="began", feature_matching=True), "began"),
        (dict(two_discriminators=True, mixture=2), "two_discriminators"),
        (dict(two_discriminators=True, pack=2), "two_discriminators"),
        (dict(two_discriminators=True, unroll=1), "two_discriminators"),
        (dict(feature_matching=True, instance_noise=0.1), "feature_matching"),
        (dict(unroll=2, pack=2), "unroll"),
        (dict(unroll=1, spectral_norm=True), "unroll"),
        (dict(unroll=1, feature_matching=True), "unroll"),
    ],
)
def test_method_rejects_incompatible_combinations(kwargs, field):
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        Method(**kwargs)


def test_method_names_the_valid_choices_and_its_networks():
    with pytest.raises(ValueError) as err:
        Method(loss="gan")
    assert all(name in str(err.value) for name in (*LOSSES, "d2gan", "began"))
    with pytest.raises(ValueError) as err:
        Method(penalty="wgan-gp")
    assert all(name in str(err.value) for name in ("gp", "r1", "dragan"))
    assert Method().d_names == ("D",)
    assert Method(loss="d2gan").d_names == Method(two_discriminators=True).d_names == ("D", "D2")
    assert Method(mixture=2).d_names == ("D", "C")


@pytest.mark.parametrize("kwargs, name", [
    ({"clip": True}, "clip"), ({"clip": -0.1}, "clip"), ({"minibatch": (True, 2)}, "minibatch"),
    ({"minibatch": (3,)}, "minibatch"), ({"d2gan_alpha": 0.0}, "d2gan_alpha"), ({"began_gamma": 3.0}, "began_gamma"),
    ({"lr_g": -1.0}, "lr_g"), ({"lr_d": float("nan")}, "lr_d"), ({"betas": (2, 3)}, "betas"), ({"began_lambda_k": 0}, "began_lambda_k"),
])
def test_method_refuses_bad_constants(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Method(**kwargs)


# --- Zhang, Li & Yu's dual discriminators (seed 003, eqs. (5) and (6)) and the optimiser ----


def test_g_step_seed_003_eq5_non_saturating_d1_term_minimax_d2_term():
    """Eq. (5): -log D1(G(z)) for D1 (Goodfellow's modification), log D2(G(z)) unchanged."""
    P = _players()
    r = _draws(P)
    nets = Nets({k: P[k] for k in ("G", "D", "D2")})
    m = Method(loss="non_saturating", two_discriminators=True, d2_generator_loss="minimax")
    x = P["G"](r["z"])
    a1, a2 = P["D"](x), P["D2"](x)
    expected = -torch.log(torch.sigmoid(a1)).mean() + torch.log(torch.sigmoid(a2)).mean()
    _assert_same(generator_step_loss(m, nets, r), expected, P["G"].parameters())


def test_g_step_seed_003_eq6_saturating_both_terms():
    P = _players()
    r = _draws(P)
    nets = Nets({k: P[k] for k in ("G", "D", "D2")})
    x = P["G"](r["z"])
    a1, a2 = P["D"](x), P["D2"](x)
    expected = torch.log(1 - torch.sigmoid(a1)).mean() + torch.log(torch.sigmoid(a2)).mean()
    _assert_same(generator_step_loss(Method(loss="minimax", two_discriminators=True), nets, r), expected,
                 P["G"].parameters())
    # the other mix: saturating for D1, non-saturating for D2 (-log(1 - D2))
    mixed = Method(loss="minimax", two_discriminators=True, d2_generator_loss="non_saturating")
    expected = torch.log(1 - torch.sigmoid(a1)).mean() - torch.log(1 - torch.sigmoid(a2)).mean()
    _assert_same(generator_step_loss(mixed, nets, r), expected, P["G"].parameters())
    # naming the same loss changes nothing
    same = Method(loss="minimax", two_discriminators=True, d2_generator_loss="minimax")
    plain = Method(loss="minimax", two_discriminators=True)
    torch.testing.assert_close(generator_step_loss(same, nets, r), generator_step_loss(plain, nets, r))


def test_d_step_is_the_same_for_eq5_and_eq6():
    P = _players()
    r = _draws(P)
    nets = Nets({k: P[k] for k in ("G", "D", "D2")})
    eq5 = Method(loss="non_saturating", two_discriminators=True, d2_generator_loss="minimax")
    eq6 = Method(loss="minimax", two_discriminators=True)
    got5, _ = discriminator_step_loss(eq5, nets, r)
    got6, _ = discriminator_step_loss(eq6, nets, r)
    expected = (ref_d("minimax", P["D"](r["real"]), P["D"](r["fake"]))
                + ref_d("minimax", P["D2"](r["fake"]), P["D2"](r["real"])))
    _assert_same(got5, expected, _d_params(P, "D", "D2"))
    _assert_same(got6, expected, _d_params(P, "D", "D2"))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(d2_generator_loss="minimax"), "d2_generator_loss"),
        (dict(two_discriminators=True, d2_generator_loss="hinge"), "d2_generator_loss"),
        (dict(loss="hinge", two_discriminators=True, d2_generator_loss="minimax"), "d2_generator_loss"),
        (dict(d2_activation="selu"), "d2_activation"),
        (dict(optimizer="sgd"), "optimizer"),
        (dict(optimizer="RMSProp"), "optimizer"),
        (dict(unroll=5, optimizer="rmsprop"), "optimizer"),
    ],
)
def test_method_rejects_bad_dual_d_and_optimizer_options(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Method(**kwargs)
    with pytest.raises(ValueError, match=field):
        Method().with_options(**kwargs)


def test_method_allows_two_discriminators_with_minibatch_discrimination_and_selu_d2():
    m = Method(loss="non_saturating", two_discriminators=True, d2_generator_loss="minimax", minibatch=(5, 3),
               d2_activation="selu")
    assert m.d_names == ("D", "D2")
    assert Method(optimizer="rmsprop", loss="wgan", clip=0.01).optimizer == "rmsprop"
    assert Method().optimizer == "adam" and Method().d2_generator_loss is None and Method().d2_activation == "relu"
