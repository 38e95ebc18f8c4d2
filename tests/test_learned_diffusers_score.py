"""Pretrained diffusers DDPMs as scores: a small random UNet2DModel saved in save_pretrained layout."""

from __future__ import annotations

import json

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from manifold_lab.learned import DiffusersScore, load_diffusers_score  # noqa: E402

#: google/ddpm-cifar10-32's schedule: linear betas, 1000 steps.
T, BETA_START, BETA_END = 1000, 1e-4, 0.02


def _unet(seed=0):
    torch.manual_seed(seed)  # diffusers initialises from the global RNG; tests only
    return diffusers.UNet2DModel(
        sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A pipeline directory (unet/, scheduler/, model_index.json), as DDPMPipeline.save_pretrained writes."""
    root = tmp_path_factory.mktemp("ddpm")
    pipe = diffusers.DDPMPipeline(unet=_unet(), scheduler=diffusers.DDPMScheduler(
        num_train_timesteps=T, beta_start=BETA_START, beta_end=BETA_END, beta_schedule="linear"))
    pipe.save_pretrained(root)
    return root


def _constant_noise_unet(c: float):
    """A UNet whose prediction is exactly ``c`` everywhere: zero output conv, bias c."""
    unet = _unet()
    with torch.no_grad():
        unet.conv_out.weight.zero_()
        unet.conv_out.bias.fill_(c)
    return unet


def test_sigma_timestep_mapping_matches_the_schedule_in_float64(saved):
    score = load_diffusers_score(saved)
    betas = torch.linspace(BETA_START, BETA_END, T, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    expected = ((1 - abar) / abar).sqrt() / 2  # [-1, 1] noise level halved: [0, 1] pixels
    t = torch.arange(T)
    assert torch.allclose(score.sigma_of_timestep(t), expected, rtol=1e-5, atol=0)
    # ... and with the scheduler's own (float32) alphas_cumprod to its precision.
    sched = diffusers.DDPMScheduler.from_pretrained(saved / "scheduler")
    abar32 = sched.alphas_cumprod.double()
    assert torch.allclose(score.sigma_of_timestep(t), ((1 - abar32) / abar32).sqrt() / 2, rtol=1e-3)
    assert torch.equal(score.timestep_for_sigma(expected[::7]), t[::7])
    # Between two grid points the nearer one in log sigma wins.
    mid_low = (expected[100].log() * 0.6 + expected[101].log() * 0.4).exp()
    assert int(score.timestep_for_sigma(mid_low)) == 100


def test_sigma_outside_the_schedule_is_refused(saved):
    score = load_diffusers_score(saved)
    with pytest.raises(ValueError, match="diffusion schedule's range"):
        score.timestep_for_sigma(1e-4)
    with pytest.raises(ValueError, match="diffusion schedule's range"):
        score.timestep_for_sigma(1e3)


def test_unet_input_timestep_and_score_are_exact(saved):
    """eps_hat = c exactly, so D = y − sigma c and s = −c/sigma; the UNet sees sqrt(abar)(2y − 1)."""
    c = 0.3
    abar = torch.cumprod(1 - torch.linspace(BETA_START, BETA_END, T, dtype=torch.float64), 0)
    unet = _constant_noise_unet(c)
    seen = {}
    unet.register_forward_pre_hook(lambda m, args: seen.update(sample=args[0], t=args[1]))
    score = DiffusersScore(unet, abar)
    g = torch.Generator().manual_seed(0)
    y = torch.rand(4, 3, 8, 8, generator=g)
    t_exact = torch.tensor([0, 10, 500, 999])
    sigma = (((1 - abar[t_exact]) / abar[t_exact]).sqrt() / 2).float()
    s = score.score(y, sigma)
    assert torch.allclose(s, (-c / sigma)[:, None].expand(4, 192), rtol=1e-5)
    assert torch.allclose(score.denoise(y, sigma), y - c * sigma.view(-1, 1, 1, 1), atol=1e-6)
    assert torch.equal(seen["t"], t_exact)
    expected_in = abar[t_exact].sqrt().view(-1, 1, 1, 1) * (2 * y.double() - 1)
    assert torch.allclose(seen["sample"].double(), expected_in, atol=1e-6)


def test_score_model_interface_on_flattened_inputs(saved):
    score = load_diffusers_score(saved)
    y = torch.rand(3, 192, generator=torch.Generator().manual_seed(1))
    s = score.score(y, 0.1)
    assert s.shape == (3, 192) and torch.isfinite(s).all()
    d = score.denoise(y, 0.1)
    # Tweedie's difference of the denoiser equals the direct −eps_hat/sigma.
    assert torch.allclose((d - y) / 0.01, s, atol=1e-3)


def test_flat_layout_like_the_hub_repository(tmp_path):
    """config.json + weights + scheduler_config.json side by side (google/ddpm-cifar10-32's layout)."""
    _unet(1).save_pretrained(tmp_path)
    diffusers.DDPMScheduler(num_train_timesteps=T).save_pretrained(tmp_path)
    score = load_diffusers_score(tmp_path)
    assert score.image_shape == (3, 8, 8) and score.alphas_cumprod.numel() == T


def test_missing_directory_and_files_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_diffusers_score(tmp_path / "nope")
    _unet().save_pretrained(tmp_path / "only_unet")
    with pytest.raises(FileNotFoundError, match="no scheduler config"):
        load_diffusers_score(tmp_path / "only_unet")


def test_non_epsilon_scheduler_is_refused(tmp_path):
    _unet().save_pretrained(tmp_path)
    diffusers.DDPMScheduler(prediction_type="v_prediction").save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "scheduler_config.json").read_text())
    assert cfg["prediction_type"] == "v_prediction"
    with pytest.raises(ValueError, match="needs an epsilon-prediction"):
        load_diffusers_score(tmp_path)


def test_missing_diffusers_is_a_one_line_import_error(monkeypatch, saved):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "diffusers" or name.startswith("diffusers."):
            raise ImportError("No module named 'diffusers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"manifold_lab\[diffusers\]") as info:
        load_diffusers_score(saved)
    assert "\n" not in str(info.value)
