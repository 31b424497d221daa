"""Image observations: the encoder each shape gets, the Atari and MinAtar envs as the files make them, rollouts that
keep pixels in their own dtype, a lost life that ends only the learner's episode, --device, and every file training,
saving, resuming and evaluating on a MinAtar game and on ALE/Pong-v5."""

import os
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import ALGOS, load, run_script

m = load("ppo_clip")  # the shared text is one text in every file (test_shared_helpers)


@pytest.mark.parametrize(
    "shape, convs, features",
    [((4, 84, 84), 3, 512), ((84, 84, 3), 3, 512), ((210, 160, 3), 3, 512), ((10, 10, 4), 1, 128), ((8, 8, 3), 1, 128)],
)
def test_the_encoder_is_chosen_by_the_shape(shape, convs, features):
    enc = m.Encoder(shape)
    assert enc.image and enc.out_dim == features
    assert sum(isinstance(layer, torch.nn.Conv2d) for layer in enc.net) == convs
    x = torch.randint(0, 256, (5, 2, *shape), dtype=torch.uint8)
    assert enc(x).shape == (5, 2, features)  # any leading dimensions


def test_a_vector_passes_the_encoder_as_it_is():
    enc, x = m.Encoder((3,)), torch.randn(4, 3)
    assert not enc.image and enc.out_dim == 3 and enc(x) is x and not list(enc.parameters())


def test_pixels_are_scaled_and_channels_last_is_moved_first():
    first = m.Encoder((4, 10, 10))
    last = m.Encoder((10, 10, 4))
    last.load_state_dict(first.state_dict())  # the same weights, the image given the other way round
    x = torch.randint(0, 256, (3, 4, 10, 10), dtype=torch.uint8)
    want = first(x.float() / 255)
    torch.testing.assert_close(first(x), want)
    torch.testing.assert_close(last(x.permute(0, 2, 3, 1)), want)
    bits = torch.rand(3, 4, 10, 10) > 0.5  # MinAtar's bool planes count as 0/1
    torch.testing.assert_close(first(bits), first(bits.float()))


def test_the_nature_cnn_is_the_published_one():
    convs = [layer for layer in m.Encoder((4, 84, 84)).net if isinstance(layer, torch.nn.Conv2d | torch.nn.Linear)]
    shapes = [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs[:3]]
    assert shapes == [(4, 32, 8, 4), (32, 64, 4, 2), (64, 64, 3, 1)]
    assert (convs[3].in_features, convs[3].out_features) == (64 * 7 * 7, 512)


def test_the_ppo_files_share_one_cnn_and_update_it_once():
    policy = m.Policy((4, 84, 84), gym.spaces.Discrete(6), (), 0.0)
    value = m.Value((4, 84, 84), (), policy.encoder)
    params = [*policy.parameters(), *value.net.parameters()]
    assert len({id(p) for p in params}) == len(params)  # no parameter twice in the optimiser
    assert value.encoder is policy.encoder and sum(p.numel() for p in value.net.parameters()) == 513
    alone = load("trpo").Value((4, 84, 84), ())  # trpo and vpg keep a CNN of their own (their docstrings)
    assert alone.encoder is not policy.encoder and sum(p.numel() for p in alone.parameters()) > 1_000_000


def test_norm_obs_on_an_image_is_a_one_line_error():
    with pytest.raises(ValueError, match="--norm-obs is for vector observations"):
        m.ObsNorm((4, 84, 84), enabled=True)
    norm, x = m.ObsNorm((10, 10, 4), enabled=False), np.ones((2, 10, 10, 4), bool)
    assert norm(x).dtype == torch.bool
    norm.update(np.stack([x] * 3))  # images keep no statistics
    assert norm.mean.shape == () and norm.count.item() == pytest.approx(1e-4)


def test_clipped_rewards_reach_the_learner_only():
    scale = m.RewardScale(False, 0.5, 1, clip=True)
    assert scale(torch.tensor([5.0, -3.0, 0.0])).tolist() == [1.0, -1.0, 0.0]
    assert scale.track(np.array([4.0]), np.array([False])).tolist() == [1.0]  # G from sign(r)
    assert scale.track(np.array([-7.0]), np.array([False])).tolist() == [0.5 * 1.0 - 1.0]


def test_atari_is_made_with_the_standard_preprocessing():
    env = m.make_env("ALE/Pong-v5")
    assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
    inner = env.env.env  # LifeLoss(FrameStackObservation(AtariPreprocessing(...)))
    assert isinstance(env, m.LifeLoss) and isinstance(inner, gym.wrappers.AtariPreprocessing)
    assert (inner.frame_skip, inner.noop_max, inner.grayscale_obs, inner.screen_size) == (4, 30, True, (84, 84))
    ale = env.unwrapped
    assert ale._frameskip == 1 and ale.ale.getFloat("repeat_action_probability") == 0.0  # no sticky actions
    obs, info = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8 and info["lives"] == 0  # Pong has no lives
    assert env.spec.max_episode_steps == 108_000  # ALE's 30-minute cap, so evaluation never cuts a game
    env.close()


def test_minatar_is_made_as_gymnax_played_it():
    env = m.make_env("MinAtar/Breakout-v1")
    assert env.observation_space.shape == (10, 10, 4) and env.observation_space.dtype == bool
    assert env.spec.max_episode_steps == 1_000 and env.unwrapped.game.sticky_action_prob == 0.0
    assert m.make_env("MinAtar/Freeway-v1").spec.max_episode_steps == 2_500
    assert m.env_family("MinAtar/Asterix-v1") == "minatar" and m.env_family("ALE/Breakout-v5") == "atari"


@pytest.mark.parametrize("env, dtype", [("ALE/Pong-v5", torch.uint8), ("MinAtar/Breakout-v1", torch.bool)])
def test_a_rollout_keeps_pixels_in_their_own_dtype(env, dtype):
    args = m.parse_args(["--env", env, "--num-envs", "2", "--num-steps", "4"])
    run = m.Run(args)
    envs = m.make_envs(env, 2)
    shape = envs.single_observation_space.shape
    policy = m.Policy(shape, envs.single_action_space, (), 0.0)
    run.load({"policy": policy})
    obs, _ = envs.reset(seed=[0, 1])
    batch, _ = m.collect_rollout(envs, policy, m.ObsNorm(shape, False), m.RewardScale(False, 0.99, 2), obs, run)
    for key in ("obs", "next_obs"):
        assert batch[key].dtype == dtype and batch[key].shape == (4, 2, *shape)
    assert batch["raw_obs"].dtype == obs.dtype  # never a float copy of every frame
    envs.close()


class Lives(gym.Env):
    """Three lives over nine steps: a life is lost at steps 3 and 6, the game ends at step 9; reward 1 a step."""

    observation_space, action_space = gym.spaces.Box(0, 9, (1,), np.float32), gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {"lives": 3}

    def step(self, action):
        self.t += 1
        info = {"lives": 3 - self.t // 3}
        return np.full(1, self.t, np.float32), 1.0, self.t == 9, False, info


def test_a_lost_life_ends_the_learners_episode_not_the_game(monkeypatch):
    gym.register(id="Test/Lives-v0", entry_point=Lives) if "Test/Lives-v0" not in gym.registry else None
    monkeypatch.setattr(m, "make_env", lambda env_id, **kw: m.LifeLoss(gym.make(env_id, **kw)))
    args = m.parse_args(["--env", "Test/Lives-v0", "--num-envs", "1", "--num-steps", "9", "--num-minibatches", "1"])
    run = m.Run(args)
    envs = m.make_envs(args.env, 1)
    policy = m.Policy((1,), envs.single_action_space, (4,), 0.0)
    run.load({"policy": policy})
    run.start, run.eval_time = 0.0, 0.0
    obs, _ = envs.reset(seed=0)
    batch, _ = m.collect_rollout(envs, policy, m.ObsNorm((1,), False), m.RewardScale(False, 0.99, 1), obs, run)
    ends = [2, 5, 8]  # steps 3, 6 and 9: two lives, then the game
    assert torch.nonzero(batch["term"][:, 0]).flatten().tolist() == ends
    assert torch.nonzero(batch["done"][:, 0]).flatten().tolist() == ends
    assert batch["next_obs"][2:4, 0, 0].tolist() == [3.0, 4.0]  # the game went on after the lost life
    assert [c[0] for c in run.curve] == [9] and run.curve[0][2] == 9.0  # one game, its whole score
    envs.close()


def test_device_cuda_without_one_is_a_one_line_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # CI has none: the test runs there
    with pytest.raises(ValueError, match="--device cuda: torch sees no such device"):
        m.parse_args(["--device", "cuda"])
    r = run_script("ppo_clip.py", "--device", "cuda", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: --device cuda") and r.stderr.count("\n") == 1


def test_device_auto_picks_the_cpu_here_and_cpu_trains(in_tmp):
    s = m.train(m.parse_args(["--env", "MinAtar/Breakout-v1", "--device", "cpu", *SMALL, "--total-timesteps", "64"]))
    assert s["global_step"] == 64
    run = m.Run(m.parse_args(["--env", "MinAtar/Breakout-v1"]))
    run.load({"policy": m.Policy((10, 10, 4), gym.spaces.Discrete(3), (), 0.0)})
    assert run.device == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("package, requirements", [("ale_py", "atari"), ("minatar", "minatar"), ("cv2", "atari")])
def test_a_missing_package_names_its_requirements_file(package, requirements, monkeypatch):
    env = "MinAtar/Asterix-v1" if requirements == "minatar" else "ALE/Breakout-v5"
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now raises ImportError
    with pytest.raises(ValueError, match=rf"pip install -r requirements-{requirements}.txt"):
        m.make_env(env)


SMALL = ["--num-envs", "2", "--num-steps", "32", "--eval-episodes", "1"]


@pytest.mark.parametrize("env", ["MinAtar/Breakout-v1", "ALE/Pong-v5"])
@pytest.mark.parametrize("algo", ALGOS)
def test_every_file_trains_saves_resumes_and_evaluates_pixels(algo, env, in_tmp):
    """Two iterations with the family's preset under small batches; a checkpoint every iteration; --resume for two
    more in a new process; the final checkpoint evaluated alone."""
    mod = load(algo)
    flags = ["--env", env, *SMALL, "--save-every", "64", "--total-timesteps", "128"]
    s = mod.train(mod.parse_args(flags))
    assert s["global_step"] == 128 and len(s["eval_returns"]) == 1
    assert mod.parse_args(flags).hidden_sizes == ()  # the family preset applied: the heads sit on the CNN
    r = run_script(f"{algo}.py", "--resume", s["run_dir"], "--total-timesteps", "256", cwd=in_tmp)
    assert r.returncode == 0, r.stderr[-2000:]
    state = torch.load(os.path.join(s["run_dir"], "checkpoint.pt"), weights_only=True)
    assert state["global_step"] == 256 and any(k.startswith("encoder.net.0") for k in state["policy"])
    ev = mod.train(mod.parse_args(["--checkpoint", s["run_dir"], "--eval-only", "--eval-episodes", "1"]))
    assert len(ev["eval_returns"]) == 1 and np.isfinite(ev["eval_mean_return"])
