"""The corruption x_t = t x1 + (1 - t) x0 and the timestep samplers."""

import math

import torch

from l2d.diffusion.path import add_noise, sample_timesteps, velocity, x_t_std


def test_noise_is_added_as_the_rectified_flow_path():
    x1 = torch.randn(4, 8)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    noisy = add_noise(x1, t, sigma=64.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(noisy.x_t, t[:, None] * x1 + (1 - t[:, None]) * noisy.x0)
    assert torch.equal(noisy.x_t[3], x1[3])
    assert torch.equal(noisy.x_t[0], noisy.x0[0])


def test_x_t_std_is_the_empirical_std_of_unit_variance_tokens():
    x1 = torch.randn(200_000, 4)  # unit-variance components, as V_y's are
    for t_value in (0.0, 0.5, 0.9, 1.0):
        t = torch.full((200_000,), t_value)
        x_t = add_noise(x1, t, sigma=8.0, generator=torch.Generator().manual_seed(1)).x_t
        expected = x_t_std(torch.tensor(t_value), 8.0).item()
        assert abs(x_t.std().item() - expected) < 0.02 * expected


def test_cosmap_maps_uniform_through_its_formula():
    generator = torch.Generator().manual_seed(0)
    t = sample_timesteps((100_000,), "cosmap", generator=generator)
    u = torch.rand((100_000,), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(t, 1 - 1 / (torch.tan(math.pi * u / 2) + 1))
    assert 0 <= t.min() and t.max() <= 1
    assert abs(t.median().item() - 0.5) < 0.01  # symmetric around 1/2
    uniform = sample_timesteps((100_000,), "uniform", generator=torch.Generator().manual_seed(0))
    assert torch.equal(uniform, u)


def test_velocity_points_at_the_estimate_and_vanishes_at_one():
    x, x1 = torch.zeros(2, 3), torch.ones(2, 3)
    v = velocity(x1, x, torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(v[0], torch.full((3,), 2.0))
    assert torch.equal(v[1], torch.zeros(3))
