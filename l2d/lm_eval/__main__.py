"""python -m l2d.lm_eval [lm-eval arguments]: lm-eval's command line, with `--model l2d` registered.

    python -m l2d.lm_eval --model l2d --model_args checkpoint=<export>,solver=midpoint,levels=8 \
        --tasks gsm8k --apply_chat_template --fewshot_as_multiturn --batch_size 16
"""

from lm_eval.__main__ import cli_evaluate

import l2d.lm_eval  # noqa: F401  registers the `l2d` model


def main() -> None:
    cli_evaluate()


if __name__ == "__main__":
    main()
