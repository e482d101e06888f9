"""The damped leapfrog: symplectic at gamma = 0, gradient flow in the overdamped limit."""

import math

import numpy as np
import pytest
import torch

from scwlm.core.integrate import leapfrog, step_coefficients

OMEGA = 1.3


def harmonic_force(x, t):
    return -(OMEGA**2) * x


def energy(x, v):
    return 0.5 * (v * v).sum() + 0.5 * OMEGA**2 * (x * x).sum()


def test_energy_conserved_and_harmonic_solution_tracked_at_zero_friction():
    torch.manual_seed(0)
    x0 = torch.randn(1, 50, 2, dtype=torch.float64)
    v0 = torch.randn(1, 50, 2, dtype=torch.float64)
    h, n = 0.01, 1000
    x, v = x0, v0
    e0 = float(energy(x0, v0))
    drift = 0.0
    for _ in range(n):  # one step at a time, to read the energy after every step
        _, x, v, _ = leapfrog(harmonic_force, x, v, steps=[h], gamma=0.0, final_velocity=True)
        drift = max(drift, abs(float(energy(x, v)) - e0) / e0)
    assert drift < 1e-3
    t = n * h
    exact = x0 * math.cos(OMEGA * t) + v0 / OMEGA * math.sin(OMEGA * t)
    assert float((x - exact).abs().max()) < 1e-3
    # a single n-step call (forces reused between steps) gives the same trajectory
    _, x_multi, v_multi, _ = leapfrog(harmonic_force, x0, v0, steps=[h] * n, gamma=0.0, final_velocity=True)
    assert torch.allclose(x_multi, x, atol=1e-12) and torch.allclose(v_multi, v, atol=1e-12)


def test_large_friction_step_is_explicit_gradient_flow_step():
    torch.manual_seed(1)
    x0 = torch.randn(1, 30, 2, dtype=torch.float64)
    v0 = 5.0 * torch.randn(1, 30, 2, dtype=torch.float64)  # forgotten in the overdamped limit
    h = 0.05
    (x1,), _, _, _ = leapfrog(harmonic_force, x0, v0, steps=[h], gamma=1e7, record=[1])
    assert torch.allclose(x1, x0 + h * harmonic_force(x0, 0.0), rtol=1e-6, atol=1e-9)


def test_exponential_scheme_overdamped_limit_has_mobility_one_over_gamma():
    x0 = torch.ones(1, 4, 2, dtype=torch.float64)
    v0 = torch.zeros_like(x0)
    h, gamma = 0.05, 1e4
    (x1,), _, _, _ = leapfrog(harmonic_force, x0, v0, steps=[h], gamma=gamma, scheme="exponential", record=[1])
    expected = x0 + h / gamma * harmonic_force(x0, 0.0)
    assert torch.allclose(x1, expected, rtol=1e-3)


@pytest.mark.parametrize("scheme", ["paper", "exponential"])
def test_zero_friction_coefficients_are_velocity_verlet(scheme):
    m, c = step_coefficients(0.0, 0.2, scheme)
    assert float(m) == 1.0 and abs(float(c) - 0.1) < 1e-6


def test_exponential_coefficients_solve_the_half_step_exactly():
    # v' = a - gamma v with constant a over h/2: v(h/2) = e^{-gamma h/2} v + (1 - e^{-gamma h/2}) a / gamma
    gamma, h, v, a = 0.7, 0.3, 1.1, -2.0
    m, c = step_coefficients(gamma, h, "exponential")
    exact = math.exp(-gamma * h / 2) * v + (1 - math.exp(-gamma * h / 2)) * a / gamma
    assert abs(float(m * v + c * a) - exact) < 1e-6


def test_record_and_per_model_steps():
    x0 = torch.zeros(2, 3, 1)
    v0 = torch.ones(2, 3, 1)
    steps = torch.tensor([[0.1, 0.2], [0.1, 0.2]])  # model 0 steps 0.1, model 1 steps 0.2
    (x1, x2), _, _, _ = leapfrog(lambda x, t: torch.zeros_like(x), x0, v0, steps=steps, gamma=0.0, record=[1, 2])
    assert np.allclose(x2[0].numpy(), 0.2) and np.allclose(x2[1].numpy(), 0.4)
    assert np.allclose(x1[1].numpy(), 0.2)


def test_unknown_scheme_rejected():
    with pytest.raises(ValueError, match="scheme"):
        step_coefficients(1.0, 0.1, "rk4")
