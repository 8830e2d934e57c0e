"""RL through L2D's own denoising chain with verifiable rewards (the paper's future work, Section 6), and the
same RL on a plain LM in token space: rollouts (rollout.py), the policies and their log-probabilities
(policy.py), the GRPO objective (objective.py), the export an RL stage starts from (start.py). The Lightning
loop is l2d.lightning.reinforce; `python -m l2d.train method=l2d_rl init=<L2D export>` runs it."""
