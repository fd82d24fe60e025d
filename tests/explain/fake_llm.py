"""FAKE LLMs for the explain tests: deterministic, rule-following stand-ins for a language model.

:class:`RuleFake` is NOT a model. It reads the pipeline's own prompts (mechscope.explain.prompts)
and answers by fixed rules: an explanation is looked up in ``rules`` (the first key it contains),
which gives a predicate on text; a token or text "fires" when the predicate holds. It answers
explainer prompts with a canned explanation, simulates (all at once through prompt logprobs, by
generation with top logprobs, or as JSON, per ``mode``) and judges detection and fuzzing prompts.
Its logprobs model a tokenizer that writes "10" as "1", "0" (SmolLM2's) unless ``ten_token``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence

from mechscope.explain import prompts
from mechscope.explain.llm import Completion, LLMError, Message, TokenLogprobs

Rule = Callable[[str], bool]
FIRE, REST = 0.9, 0.95  # P of the firing value at a firing token; P("0") at a quiet one
LN = math.log


def digits(text: str) -> bool:
    return any(c.isdigit() for c in text)


def vowels(text: str) -> bool:
    return any(c in "aeiouAEIOU" for c in text)


DEFAULT_RULES: dict[str, Rule] = {"digit": digits, "vowel": vowels}


def tl(token: str, top: dict[str, float] | None = None) -> TokenLogprobs:
    top = top if top is not None else {token: 0.0}
    return TokenLogprobs(token, top.get(token, -30.0), top)


class RuleFake:
    """A FAKE LLM (see the module docstring). ``mode``: "prompt" (prompt logprobs), "generate"
    (no prompt logprobs; generation with top logprobs), "json" (no logprobs at all), "badjson"
    (JSON answers that cannot be used). ``delay`` seconds per call; ``fail_every`` n: every n-th
    call raises LLMError (as a backend does after its retries)."""

    name = "fake"

    def __init__(
        self,
        explanation: str = "digits",
        mode: str = "prompt",
        ten_token: bool = False,
        rules: dict[str, Rule] | None = None,
        delay: float = 0.0,
        judge_answer: str | None = None,
    ) -> None:
        self.explanation, self.mode, self.ten_token = explanation, mode, ten_token
        self.rules = rules or DEFAULT_RULES
        self.delay, self.judge_answer = delay, judge_answer
        self.model = f"rule-fake-{mode}"
        self.calls: Counter[str] = Counter()
        self.prompts: list[list[Message]] = []

    def rule(self, explanation: str) -> Rule:
        for key, r in self.rules.items():
            if key in explanation.lower():
                return r
        return lambda _t: False

    @staticmethod
    def _explanation(messages: list[Message]) -> str:
        m = re.search(r"Explanation of the unit: (.*)", messages[-1].content)
        assert m is not None, "not a simulator or judge prompt"
        return m.group(1)

    # ----- complete -----
    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        top_logprobs: int = 0,
        json_schema: dict[str, object] | None = None,
    ) -> Completion:
        time.sleep(self.delay)
        self.prompts.append(messages)
        system = messages[0].content
        if system in (prompts.EXPLAIN_SYSTEM, prompts.EXPLAIN_HEAD_SYSTEM):
            self.calls["explain"] += 1
            return Completion(
                f"The main thing this neuron does is find {self.explanation}.\nAnything else", "stop"
            )
        if system in (prompts.DETECT_SYSTEM, prompts.FUZZ_SYSTEM):
            self.calls["judge"] += 1
            return Completion(self.judge_answer or json.dumps(self._judge(messages)), "stop")
        rule = self.rule(self._explanation(messages))
        if system == prompts.SIMULATE_JSON_SYSTEM:
            self.calls["json"] += 1
            tokens = json.loads(re.search(r"Tokens \(\d+\): (.*)", messages[-1].content).group(1))  # type: ignore[union-attr]
            if self.mode == "badjson":
                return Completion(
                    "[10, 0, " if len(tokens) % 2 else json.dumps([0] * (len(tokens) + 1)), "stop"
                )
            return Completion(json.dumps([10 if rule(t) else 0 for t in tokens]), "stop")
        assert system == prompts.SIMULATE_SYSTEM
        self.calls["generate"] += 1
        if self.mode != "generate":
            return Completion("<start>\n<end>", "stop", None)
        lines = messages[-1].content.split("Tokens, one per line:\n", 1)[1].split("\n")
        return Completion(
            "".join(e.token for e in self._generated(lines, rule)), "stop", self._generated(lines, rule)
        )

    def _generated(self, lines: list[str], rule: Rule) -> list[TokenLogprobs]:
        out = [tl(prompts.START), tl("\n")]
        for t in lines:
            out += [tl(t), tl("\t")]
            if rule(t):
                out += [tl("1", {"1": LN(FIRE), "0": LN(1 - FIRE)}), tl("0", {"0": LN(0.95), "\n": LN(0.05)})]
            else:
                out.append(tl("0", {"0": LN(REST), "1": LN(1 - REST)}))
            out.append(tl("\n"))
        return [*out, tl(prompts.END)]

    def _judge(self, messages: list[Message]) -> list[int]:
        rule = self.rule(self._explanation(messages))
        texts = re.findall(r"^Text \d+: (.*)$", messages[-1].content, re.MULTILINE)
        if messages[0].content == prompts.DETECT_SYSTEM:
            return [int(rule(t)) for t in texts]
        marked = [re.findall(r"<<(.*?)>>", t) for t in texts]
        return [int(bool(m) and all(rule(x) for x in m)) for m in marked]

    # ----- prompt logprobs -----
    def prompt_logprobs(
        self,
        messages: list[Message],
        assistant_prefix: str,
        *,
        top_logprobs: int,
        always: Sequence[str] = (),
    ) -> list[TokenLogprobs] | None:
        time.sleep(self.delay)
        self.calls["prompt"] += 1
        if self.mode != "prompt":
            return None
        rule = self.rule(self._explanation(messages))
        out = []
        for piece in re.split(r"(\n|\t)", assistant_prefix):
            if piece:
                out.append(tl(piece))
        # Each value slot (after a tab): the distribution over what would be written there.
        for i in range(1, len(out)):
            if out[i - 1].token != "\t":
                continue
            fires = rule(out[i - 2].token)
            value = out[i].token
            if value in (prompts.UNKNOWN, "0") or (value == "1" and self.ten_token):
                top = (
                    {("10" if self.ten_token else "1"): LN(FIRE), "0": LN(1 - FIRE)}
                    if fires
                    else {"0": LN(REST), "1": LN(1 - REST)}
                )
                out[i] = tl(value, top)
            elif value == "1":  # "10" split as "1", "0": the next token's distribution follows "1"
                out[i] = tl("1", {"1": LN(FIRE if fires else 1 - REST)})
                out[i + 1] = tl(
                    "\n", {"0": LN(0.95), "\n": LN(0.05)} if fires else {"\n": LN(0.9), "0": LN(0.1)}
                )
        return out


class ScriptedLLM:
    """A FAKE LLM that returns canned prompt logprobs, one list per call, in order."""

    name = "scripted"
    model = "scripted"

    def __init__(
        self, answers: list[list[TokenLogprobs] | None], completions: list[Completion] | None = None
    ) -> None:
        self.answers, self.completions = list(answers), list(completions or [])
        self.prefixes: list[str] = []

    def prompt_logprobs(
        self,
        messages: list[Message],
        assistant_prefix: str,
        *,
        top_logprobs: int,
        always: Sequence[str] = (),
    ) -> list[TokenLogprobs] | None:
        self.prefixes.append(assistant_prefix)
        return self.answers.pop(0)

    def complete(self, messages: list[Message], **kw: object) -> Completion:
        if not self.completions:
            raise LLMError("no canned completion left")
        return self.completions.pop(0)
