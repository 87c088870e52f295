"""Mutation check of the losses, penalties and remedies: does every term have a test that fails?

A dev tool (not collected by pytest, not run in CI): it copies the repository (without .venv
and .git) to a scratch folder, then applies one mutation at a time to the copy (a flipped sign,
a changed constant, swapped roles), runs the unit tests of that module there with the copy
first on ``PYTHONPATH`` and prints which mutations the tests killed. The working tree is never
touched. Before the loop it checks that the copy's ``gan_notes`` is the one imported, that the
tests pass unmutated, and that a deliberately broken copy fails them.

Usage (from the repository, in its virtual environment)::

    OMP_NUM_THREADS=1 python tests/mutation_check.py            # all mutations
    python tests/mutation_check.py --only objective.py,ms- --copy /tmp/mut
    python tests/mutation_check.py --own --only remedies.py   # the module's own tests only
    python tests/mutation_check.py --list

Exit status 0 when every mutation was killed. A mutation whose original snippet is no longer
in its file is reported as ``stale``: update the list when the formulas are rewritten.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: The unit-test files run for a mutation of each module (fast; run with -x).
TESTS = {
    "losses.py": ["tests/test_losses.py", "tests/test_loss_zoo.py", "tests/test_objective.py"],
    "penalties.py": ["tests/test_penalties.py", "tests/test_objective.py"],
    "remedies.py": ["tests/test_remedies.py", "tests/test_objective.py"],
    "unrolled.py": ["tests/test_unrolled.py", "tests/test_objective.py"],
    "objective.py": ["tests/test_objective.py"],
}
#: ``--own``: only the module's own test file(s), to check that each module's tests pin its
#: formulas without help from the objective's tests (one test file per module).
OWN_TESTS = {
    "losses.py": ["tests/test_losses.py", "tests/test_loss_zoo.py"],
    "penalties.py": ["tests/test_penalties.py"],
    "remedies.py": ["tests/test_remedies.py"],
    "unrolled.py": ["tests/test_unrolled.py"],
    "objective.py": ["tests/test_objective.py"],
}


@dataclass(frozen=True)
class Mutation:
    id: str
    file: str  # under gan_notes/
    original: str  # must occur exactly once in the file
    mutated: str


M = Mutation
MUTATIONS: list[Mutation] = [
    # --- losses.py: the loss zoo ------------------------------------------------------------
    M("d-logistic-real-sign", "losses.py", "return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
      "return F.softplus(real_logits).mean() + F.softplus(fake_logits).mean()"),
    M("d-logistic-fake-sign", "losses.py", "return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
      "return F.softplus(-real_logits).mean() + F.softplus(-fake_logits).mean()"),
    M("d-logistic-combine", "losses.py", "return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
      "return F.softplus(-real_logits).mean() - F.softplus(fake_logits).mean()"),
    M("d-lsgan-real-target", "losses.py", "return ((real_logits - 1) ** 2).mean() + (fake_logits**2).mean()",
      "return ((real_logits + 1) ** 2).mean() + (fake_logits**2).mean()"),
    M("d-lsgan-fake-target", "losses.py", "return ((real_logits - 1) ** 2).mean() + (fake_logits**2).mean()",
      "return ((real_logits - 1) ** 2).mean() + ((fake_logits + 1) ** 2).mean()"),
    M("d-lsgan-combine", "losses.py", "return ((real_logits - 1) ** 2).mean() + (fake_logits**2).mean()",
      "return ((real_logits - 1) ** 2).mean() - (fake_logits**2).mean()"),
    M("d-wgan-sign", "losses.py", "return -real_logits.mean() + fake_logits.mean()", "return real_logits.mean() - fake_logits.mean()"),
    M("d-wgan-fake-sign", "losses.py", "return -real_logits.mean() + fake_logits.mean()", "return -real_logits.mean() - fake_logits.mean()"),
    M("d-hinge-real-sign", "losses.py", "F.relu(1 - real_logits)", "F.relu(1 + real_logits)"),
    M("d-hinge-fake-sign", "losses.py", "F.relu(1 + fake_logits)", "F.relu(1 - fake_logits)"),
    M("d-hinge-margin", "losses.py", "F.relu(1 - real_logits)", "F.relu(2 - real_logits)"),
    M("g-minimax-sign", "losses.py", "return -F.softplus(fake_logits).mean()", "return F.softplus(fake_logits).mean()"),
    M("g-minimax-logit-sign", "losses.py", "return -F.softplus(fake_logits).mean()", "return -F.softplus(-fake_logits).mean()"),
    M("g-ns-sign", "losses.py", "return F.softplus(-fake_logits).mean()", "return F.softplus(fake_logits).mean()"),
    M("g-lsgan-target", "losses.py", "return ((fake_logits - 1) ** 2).mean()", "return ((fake_logits + 1) ** 2).mean()"),
    M("g-wgan-hinge-sign", "losses.py", "return -fake_logits.mean()", "return fake_logits.mean()"),
    M("log-softplus-threshold", "losses.py", "low = a < -15.0", "low = a < -1.0"),
    M("d2gan-d-alpha-sign", "losses.py", "-alpha * _log_softplus(d1_real).mean()", "alpha * _log_softplus(d1_real).mean()"),
    M("d2gan-d-alpha-is-beta", "losses.py", "-alpha * _log_softplus(d1_real).mean()", "-beta * _log_softplus(d1_real).mean()"),
    M("d2gan-d-d1fake-sign", "losses.py", "+ F.softplus(d1_fake).mean()", "- F.softplus(d1_fake).mean()"),
    M("d2gan-d-d2real-sign", "losses.py", "+ F.softplus(d2_real).mean() - beta", "- F.softplus(d2_real).mean() - beta"),
    M("d2gan-d-beta-sign", "losses.py", "- beta * _log_softplus(d2_fake).mean()", "+ beta * _log_softplus(d2_fake).mean()"),
    M("d2gan-default-alpha", "losses.py", "alpha: float = 0.2, beta: float = 0.1,", "alpha: float = 0.1, beta: float = 0.1,"),
    M("d2gan-default-beta", "losses.py", "alpha: float = 0.2, beta: float = 0.1,", "alpha: float = 0.2, beta: float = 0.2,"),
    M("d2gan-g-d1-sign", "losses.py", "return -F.softplus(d1_fake).mean() + beta", "return F.softplus(d1_fake).mean() + beta"),
    M("d2gan-g-beta-sign", "losses.py", "+ beta * _log_softplus(d2_fake).mean()", "- beta * _log_softplus(d2_fake).mean()"),
    M("d2gan-g-default-beta", "losses.py", "d2_fake: torch.Tensor, beta: float = 0.1)", "d2_fake: torch.Tensor, beta: float = 0.2)"),
    M("dual-d-roles", "losses.py", "discriminator_loss(loss, d2_fake, d2_real)", "discriminator_loss(loss, d2_real, d2_fake)"),
    M("dual-g-negation", "losses.py", "generator_loss(loss, -d2_fake)", "generator_loss(loss, d2_fake)"),
    M("began-rec-l1", "losses.py", "(v - v_rec).abs().flatten(start_dim=1)", "(v - v_rec).pow(2).flatten(start_dim=1)"),
    M("began-rec-mean", "losses.py", ".flatten(start_dim=1).mean(dim=1)", ".flatten(start_dim=1).sum(dim=1)"),
    M("began-d-sign", "losses.py", "return l_real.mean() - k * l_fake.mean(), l_fake.mean()", "return l_real.mean() + k * l_fake.mean(), l_fake.mean()"),
    M("began-g-term", "losses.py", "return l_real.mean() - k * l_fake.mean(), l_fake.mean()", "return l_real.mean() - k * l_fake.mean(), l_real.mean()"),
    M("began-k-sign", "losses.py", "step = lambda_k * (gamma * l_real.detach().mean() - l_fake.detach().mean())",
      "step = lambda_k * (l_fake.detach().mean() - gamma * l_real.detach().mean())"),
    M("began-k-gamma", "losses.py", "step = lambda_k * (gamma * l_real.detach().mean() - l_fake.detach().mean())",
      "step = lambda_k * (l_real.detach().mean() - l_fake.detach().mean())"),
    M("began-k-clip", "losses.py", "torch.clamp(k.detach() + step, 0.0, 1.0)", "torch.clamp(k.detach() + step, 0.0, 2.0)"),
    M("began-k-update-sign", "losses.py", "torch.clamp(k.detach() + step, 0.0, 1.0)", "torch.clamp(k.detach() - step, 0.0, 1.0)"),
    M("began-convergence-sign", "losses.py", "return lr + (gamma * lr - lf).abs()", "return lr - (gamma * lr - lf).abs()"),
    M("began-convergence-gamma", "losses.py", "return lr + (gamma * lr - lf).abs()", "return lr + (lr - lf).abs()"),
    # --- penalties.py ------------------------------------------------------------------------
    M("gp-target", "penalties.py", "return ((gradient_norms(critic, x_hat) - 1) ** 2).mean()", "return ((gradient_norms(critic, x_hat) - 0.5) ** 2).mean()"),
    M("gp-square", "penalties.py", "return ((gradient_norms(critic, x_hat) - 1) ** 2).mean()", "return ((gradient_norms(critic, x_hat) - 1).abs()).mean()"),
    M("gp-interpolation-roles", "penalties.py", "x_hat = eps * real.detach() + (1 - eps) * fake.detach()",
      "x_hat = eps * fake.detach() + (1 - eps) * real.detach()"),
    M("gp-interpolation-sign", "penalties.py", "x_hat = eps * real.detach() + (1 - eps) * fake.detach()",
      "x_hat = eps * real.detach() + (1 + eps) * fake.detach()"),
    M("r1-square", "penalties.py", "return (gradient_norms(critic, real.detach()) ** 2).mean()", "return (gradient_norms(critic, real.detach()) ** 1).mean()"),
    M("r1-mean", "penalties.py", "return (gradient_norms(critic, real.detach()) ** 2).mean()", "return (gradient_norms(critic, real.detach()) ** 2).sum()"),
    M("dragan-perturbation-sign", "penalties.py", "x + c * x.std() * u", "x - c * x.std() * u"),
    M("dragan-perturbation-std", "penalties.py", "x + c * x.std() * u", "x + c * u"),
    M("dragan-target", "penalties.py", "x.std() * u) - 1) ** 2", "x.std() * u) - 0.5) ** 2"),
    M("dragan-default-c", "penalties.py", "c: float = 0.5", "c: float = 1.0"),
    M("penalty-gp-roles", "penalties.py", "gradient_penalty(critic, positive, negative,", "gradient_penalty(critic, negative, positive,"),
    M("penalty-gp-draws", "penalties.py", 'eps=draws.get("eps")', "eps=None"),
    M("penalty-r1-batch", "penalties.py", "r1_penalty(critic, positive)", "r1_penalty(critic, negative)"),
    M("penalty-dragan-batch", "penalties.py", "dragan_penalty(critic, positive,", "dragan_penalty(critic, negative,"),
    # --- remedies.py -------------------------------------------------------------------------
    M("pack-strided", "remedies.py", "return x.reshape(*x.shape[:-2], b // m, m * d)",
      "return x.reshape(*x.shape[:-2], m, b // m, d).swapaxes(-3, -2).reshape(*x.shape[:-2], b // m, m * d)"),
    M("md-self-term", "remedies.py", "o = torch.exp(-l1).sum(-2) - 1.0", "o = torch.exp(-l1).sum(-2)"),
    M("md-kernel-sign", "remedies.py", "o = torch.exp(-l1).sum(-2) - 1.0", "o = torch.exp(-0.5 * l1).sum(-2) - 1.0"),
    M("md-l1", "remedies.py", ".abs().sum(-1)  # (..., B_i, B_j, K)", ".pow(2).sum(-1)  # (..., B_i, B_j, K)"),
    M("features-layer", "remedies.py", "body = D[:-1]", "body = D[:-2]"),
    M("fm-square", "remedies.py", "return ((f_real.mean(-2) - f_fake.mean(-2)) ** 2).sum(-1)", "return ((f_real.mean(-2) - f_fake.mean(-2)).abs()).sum(-1)"),
    M("fm-sum", "remedies.py", "return ((f_real.mean(-2) - f_fake.mean(-2)) ** 2).sum(-1)", "return ((f_real.mean(-2) - f_fake.mean(-2)) ** 2).mean(-1)"),
    M("fm-difference", "remedies.py", "return ((f_real.mean(-2) - f_fake.mean(-2)) ** 2).sum(-1)", "return ((f_real.mean(-2) + f_fake.mean(-2)) ** 2).sum(-1)"),
    M("ms-sign", "remedies.py", "return 1.0 / (ratio + eps)", "return -1.0 / (ratio + eps)"),
    M("ms-reciprocal", "remedies.py", "return 1.0 / (ratio + eps)", "return ratio + eps"),
    M("ms-eps", "remedies.py", "return 1.0 / (ratio + eps)", "return 1.0 / (ratio + 10 * eps)"),
    M("ms-default-eps", "remedies.py", "eps: float = 1e-5) -> torch.Tensor:", "eps: float = 1e-3) -> torch.Tensor:"),
    M("ms-ratio-inverted", "remedies.py", "ratio = (x1 - x2).abs().mean() / (z1 - z2).abs().mean()", "ratio = (z1 - z2).abs().mean() / (x1 - x2).abs().mean()"),
    M("ms-l1", "remedies.py", "ratio = (x1 - x2).abs().mean() / (z1 - z2).abs().mean()", "ratio = (x1 - x2).pow(2).mean() / (z1 - z2).abs().mean()"),
    M("mixture-order", "remedies.py", "[..., torch.argsort(order).to(z.device), :]", "[..., order.to(z.device), :]"),
    M("mixture-assignment", "remedies.py", "device=device) % self.n_components", "device=device) // self.n_components"),
    M("mixture-ce-sign", "remedies.py", "return -torch.log_softmax(class_logits", "return torch.log_softmax(class_logits"),
    M("mixture-ce-target", "remedies.py", "target = torch.arange(n, device=class_logits.device) % k",
      "target = (torch.arange(n, device=class_logits.device) + 1) % k"),
    M("mixture-ce-mean", "remedies.py", "target].mean(-1)", "target].sum(-1)"),
    # --- objective.py: how the terms are combined -------------------------------------------
    M("noise-sign", "objective.py", "x = x + method.instance_noise * noise", "x = x - method.instance_noise * noise"),
    M("noise-std", "objective.py", "x = x + method.instance_noise * noise", "x = x + noise"),
    M("pack-skipped", "objective.py", "return remedies.pack(x, method.pack) if method.pack > 1 else x", "return x"),
    M("began-d-roles", "objective.py", 'losses.began_losses(l_real, l_fake, r["k"])', 'losses.began_losses(l_fake, l_real, r["k"])'),
    M("began-d-k", "objective.py", 'losses.began_losses(l_real, l_fake, r["k"])', "losses.began_losses(l_real, l_fake, 1.0)"),
    M("d2gan-d-networks", "objective.py", 'for n in ("D", "D2") for x in (x_real, x_fake)', 'for n in ("D2", "D") for x in (x_real, x_fake)'),
    M("d2gan-d-batches", "objective.py", 'for n in ("D", "D2") for x in (x_real, x_fake)', 'for n in ("D", "D2") for x in (x_fake, x_real)'),
    M("d2gan-d-constants", "objective.py", "alpha=m.d2gan_alpha, beta=m.d2gan_beta)", "alpha=m.d2gan_beta, beta=m.d2gan_alpha)"),
    M("d-roles", "objective.py", "d_loss = losses.discriminator_loss(m.loss, a_real, a_fake)", "d_loss = losses.discriminator_loss(m.loss, a_fake, a_real)"),
    M("d2-roles", "objective.py", 'losses.discriminator_loss(m.loss, nets("D2", x_fake), nets("D2", x_real))',
      'losses.discriminator_loss(m.loss, nets("D2", x_real), nets("D2", x_fake))'),
    M("d2-combine", "objective.py", "loss = d_loss + d2_loss", "loss = d_loss - d2_loss"),
    M("penalty-d-roles", "objective.py", '[("D", positive, negative)]', '[("D", negative, positive)]'),
    M("penalty-d2-roles", "objective.py", '[("D2", negative, positive)]', '[("D2", positive, negative)]'),
    M("penalty-weight", "objective.py", "loss = loss + m.penalty_weight * penalty(", "loss = loss + penalty("),
    M("penalty-sign", "objective.py", "loss = loss + m.penalty_weight * penalty(", "loss = loss - m.penalty_weight * penalty("),
    M("penalty-noisy-inputs", "objective.py", "positive, negative = (d_input(m, t) for t in (real, fake))", "positive, negative = x_real, x_fake"),
    M("penalty-draws", "objective.py", "penalty(m.penalty, critic, pos, neg, r)", "penalty(m.penalty, critic, pos, neg, None)"),
    M("penalty-uses-forward", "objective.py", "critic = lambda x, name=name: nets.module_call(name, x)", "critic = lambda x, name=name: nets(name, x)"),
    M("mixture-d-sign", "objective.py", 'loss = loss + remedies.mixture_classifier_loss(nets("C", fake))',
      'loss = loss - remedies.mixture_classifier_loss(nets("C", fake))'),
    M("mixture-d-weight", "objective.py", 'loss = loss + remedies.mixture_classifier_loss(nets("C", fake))',
      'loss = loss + m.mixture_beta * remedies.mixture_classifier_loss(nets("C", fake))'),
    M("seen-d-real", "objective.py", '"d_real": torch.sigmoid(a_real.detach()).mean()', '"d_real": torch.sigmoid(a_fake.detach()).mean()'),
    M("began-g-sign", "objective.py", 'loss = losses.began_reconstruction(fake, nets("D", fake)).mean()',
      'loss = -losses.began_reconstruction(fake, nets("D", fake)).mean()'),
    M("d2gan-g-constant", "objective.py", 'losses.d2gan_generator_loss(nets("D", x), nets("D2", x), beta=m.d2gan_beta)',
      'losses.d2gan_generator_loss(nets("D", x), nets("D2", x), beta=m.d2gan_alpha)'),
    M("d2gan-g-networks", "objective.py", 'losses.d2gan_generator_loss(nets("D", x), nets("D2", x), beta=m.d2gan_beta)',
      'losses.d2gan_generator_loss(nets("D2", x), nets("D", x), beta=m.d2gan_beta)'),
    M("d2gan-g-noise", "objective.py", 'x = d_input(m, fake, r.get("noise_fake"))\n        loss = losses.d2gan',
      "x = d_input(m, fake)\n        loss = losses.d2gan"),
    M("fm-sign", "objective.py", "loss = remedies.feature_matching_loss(", "loss = -remedies.feature_matching_loss("),
    M("fm-real-batch", "objective.py", 'd_input(m, r["real"]), d_params).detach()', 'd_input(m, r["real"][::2]), d_params).detach()'),
    M("unroll-skipped", "objective.py", 'loss = losses.generator_loss(m.loss, critic(d_input(m, fake, r.get("noise_fake"))))',
      'loss = losses.generator_loss(m.loss, nets("D", d_input(m, fake, r.get("noise_fake"))))'),
    M("unroll-noise", "objective.py", 'loss = losses.generator_loss(m.loss, critic(d_input(m, fake, r.get("noise_fake"))))',
      "loss = losses.generator_loss(m.loss, critic(fake))"),
    M("g-two-d-negation", "objective.py", 'loss = loss + losses.generator_loss(m.loss, -nets("D2", x))', 'loss = loss + losses.generator_loss(m.loss, nets("D2", x))'),
    M("g-two-d-combine", "objective.py", 'loss = loss + losses.generator_loss(m.loss, -nets("D2", x))', 'loss = loss - losses.generator_loss(m.loss, -nets("D2", x))'),
    M("g-noise", "objective.py", 'x = d_input(m, fake, r.get("noise_fake"))\n        loss = losses.generator_loss',
      "x = d_input(m, fake)\n        loss = losses.generator_loss"),
    M("ms-term-sign", "objective.py", "loss = loss + m.mode_seeking * remedies.mode_seeking_loss(", "loss = loss - m.mode_seeking * remedies.mode_seeking_loss("),
    M("ms-term-weight", "objective.py", "loss = loss + m.mode_seeking * remedies.mode_seeking_loss(", "loss = loss + remedies.mode_seeking_loss("),
    M("ms-term-latents", "objective.py", 'remedies.mode_seeking_loss(fake, nets("G", r["z2"]), r["z"], r["z2"])',
      'remedies.mode_seeking_loss(fake, nets("G", r["z2"]), r["z2"], r["z"] + 1)'),
    M("mixture-g-sign", "objective.py", "loss = loss + m.mixture_beta * remedies.mixture_classifier_loss(",
      "loss = loss - m.mixture_beta * remedies.mixture_classifier_loss("),
    M("mixture-g-weight", "objective.py", "loss = loss + m.mixture_beta * remedies.mixture_classifier_loss(", "loss = loss + remedies.mixture_classifier_loss("),
    M("lookahead-state", "objective.py", "eps=adam[\"eps\"], state=adam)", "eps=adam[\"eps\"], state=None)"),
    M("lookahead-lr", "objective.py", 'm.unroll, adam["lr"], "adam"', 'm.unroll, 2 * adam["lr"], "adam"'),
    M("lookahead-betas", "objective.py", 'betas=adam["betas"]', "betas=(0.5, 0.999)"),
    M("lookahead-eps", "objective.py", 'eps=adam["eps"], state=adam)', "eps=1e-8, state=adam)"),
    M("lookahead-k", "objective.py", 'theta_k = unroll(d_loss, theta0, m.unroll,', "theta_k = unroll(d_loss, theta0, 1,"),
    M("lookahead-optimizer", "objective.py", 'adam["lr"], "adam",', 'adam["lr"], "sgd",'),
    M("lookahead-d-roles", "objective.py", 'nets.module_call("D", real, theta), nets.module_call("D", fake, theta)',
      'nets.module_call("D", fake, theta), nets.module_call("D", real, theta)'),
    M("default-d2gan-alpha", "objective.py", "d2gan_alpha: float = 0.2", "d2gan_alpha: float = 0.3"),
    M("default-d2gan-beta", "objective.py", "d2gan_beta: float = 0.1", "d2gan_beta: float = 0.2"),
    # --- unrolled.py: SGD/Adam look-ahead, continuing D's state -----------------------------
    M("sgd-sign", "unrolled.py", "theta = {n: p - lr * g[n] for n, p in theta.items()}", "theta = {n: p + lr * g[n] for n, p in theta.items()}"),
    M("adam-m-constants", "unrolled.py", "m = {n: b1 * m[n] + (1 - b1) * g[n] for n in theta}", "m = {n: (1 - b1) * m[n] + b1 * g[n] for n in theta}"),
    M("adam-v-constants", "unrolled.py", "v = {n: b2 * v[n] + (1 - b2) * g[n] ** 2 for n in theta}", "v = {n: (1 - b2) * v[n] + b2 * g[n] ** 2 for n in theta}"),
    M("adam-v-square", "unrolled.py", "v = {n: b2 * v[n] + (1 - b2) * g[n] ** 2 for n in theta}", "v = {n: b2 * v[n] + (1 - b2) * g[n].abs() for n in theta}"),
    M("adam-m-bias", "unrolled.py", "(m[n] / (1 - b1**t))", "(m[n] / (1 - b1))"),
    M("adam-v-bias", "unrolled.py", "v[n] / (1 - b2**t)", "v[n] / (1 - b2)"),
    M("adam-eps", "unrolled.py", "+ eps**2)", "+ eps)"),
    M("adam-update-sign", "unrolled.py", "n: p - lr * (m[n]", "n: p + lr * (m[n]"),
    M("adam-step-restarts", "unrolled.py", "for t in range(t0 + 1, t0 + k + 1):", "for t in range(1, k + 1):"),
    M("adam-state-m", "unrolled.py", 'm = {n: state["exp_avg"][n].detach() for n in theta}', "m = {n: torch.zeros_like(p) for n, p in theta.items()}"),
    M("adam-state-v", "unrolled.py", 'v = {n: state["exp_avg_sq"][n].detach() for n in theta}', "v = {n: torch.zeros_like(p) for n, p in theta.items()}"),
    M("adam-state-step", "unrolled.py", 't0 = int(state["step"])', "t0 = 0"),
    M("unrolled-loss-theta0", "unrolled.py", "return generator_loss(loss, functional_call(D, theta_k, (fake,)))",
      "return generator_loss(loss, functional_call(D, theta0, (fake,)))"),
    M("unrolled-loss-roles", "unrolled.py", "discriminator_loss(loss, functional_call(D, theta, (real,)), functional_call(D, theta, (fake,)))",
      "discriminator_loss(loss, functional_call(D, theta, (fake,)), functional_call(D, theta, (real,)))"),
    M("unrolled-loss-state", "unrolled.py", "optimizer, betas=betas, state=state)", "optimizer, betas=betas, state=None)"),
    M("adam-state-swap", "unrolled.py", 'out["exp_avg"][n] = st["exp_avg"].detach()', 'out["exp_avg"][n] = st["exp_avg_sq"].detach()'),
    M("adam-state-step-read", "unrolled.py", 'out["step"] = int(st["step"])', 'out["step"] = int(st["step"]) - 1'),
    M("adam-state-settings", "unrolled.py", '"betas": tuple(group["betas"]), "eps": group["eps"]}', '"betas": (0.5, 0.999), "eps": group["eps"]}'),
]


def copy_repo(dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    ignore = shutil.ignore_patterns(".venv", ".venv-ci", ".git", "__pycache__", ".hypothesis", "_build", ".cache", "*.pyc")
    shutil.copytree(REPO, dst, ignore=ignore, symlinks=True)


def run_tests(copy: Path, files: list[str]) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(copy), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "GAN_NOTES_PROFILE": "smoke", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *files]
    p = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True)
    lines = (p.stdout + p.stderr).strip().splitlines()
    return p.returncode, lines[-1] if lines else ""


def check_copy_is_imported(copy: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", "import gan_notes; print(gan_notes.__file__)"], cwd=copy, env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(copy.resolve()):
        sys.exit(f"the copy is not what runs: gan_notes imported from {out}")
    # A deliberately broken copy must fail the tests (else the tests run another gan_notes).
    target = copy / "gan_notes" / "objective.py"
    text = target.read_text()
    target.write_text(text.replace("loss = d_loss + d2_loss", "loss = d_loss + d2_loss + 1.0"))
    try:
        rc, _ = run_tests(copy, ["tests/test_objective.py"])
    finally:
        target.write_text(text)
    if rc == 0:
        sys.exit("a deliberately mutated copy passed the tests: the copy is not what runs")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copy", default="/tmp/mut", help="scratch folder for the copy (replaced)")
    ap.add_argument("--only", default="", help="run only mutations whose id or file contains one of these (comma-separated)")
    ap.add_argument("--own", action="store_true", help="run only each module's own test file(s), not test_objective.py")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = ap.parse_args()
    tests = OWN_TESTS if args.own else TESTS
    wanted = args.only.split(",")
    chosen = [m for m in MUTATIONS if any(w in m.id or w in m.file for w in wanted)]
    if args.list:
        for m in chosen:
            print(f"{m.file:14s} {m.id}")
        return 0
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS), "duplicate mutation ids"
    start = time.perf_counter()
    copy = Path(args.copy)
    copy_repo(copy)
    check_copy_is_imported(copy)
    for files in {tuple(tests[m.file]) for m in chosen}:
        rc, last = run_tests(copy, list(files))
        if rc != 0:
            sys.exit(f"the unmutated copy fails {' '.join(files)}: {last}")
    rows = []
    for m in chosen:
        path = copy / "gan_notes" / m.file
        text = path.read_text()
        if text.count(m.original) != 1:
            rows.append((m, "stale", f"original found {text.count(m.original)} times", 0.0))
            continue
        t0 = time.perf_counter()
        path.write_text(text.replace(m.original, m.mutated))
        try:
            rc, last = run_tests(copy, tests[m.file])
        finally:
            path.write_text(text)
        status = "SURVIVED" if rc == 0 else ("killed" if rc == 1 else f"error rc={rc}")
        rows.append((m, status, last, time.perf_counter() - t0))
        print(f"{status:9s} {m.file:13s} {m.id:28s} {time.perf_counter() - t0:5.1f} s", flush=True)
    print()
    print(f"{'status':9s} {'file':13s} {'mutation':28s} {'s':>5s}  last line of pytest")
    for m, status, last, dt in rows:
        print(f"{status:9s} {m.file:13s} {m.id:28s} {dt:5.1f}  {last}")
    killed = sum(s == "killed" or s.startswith("error") for _, s, _, _ in rows)
    survived = [m.id for m, s, _, _ in rows if s == "SURVIVED"]
    stale = [m.id for m, s, _, _ in rows if s == "stale"]
    print(f"\n{len(rows)} mutations: {killed} killed, {len(survived)} survived, {len(stale)} stale; "
          f"{time.perf_counter() - start:.0f} s in all")
    if survived:
        print("survived: " + ", ".join(survived))
    if stale:
        print("stale: " + ", ".join(stale))
    return 0 if not survived and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
