"""Challenge files: loader errors name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.domain.challenge import Kind
from grader.domain.loader import load_challenge, load_challenges, read_challenges
from grader.errors import ChallengeError

ENVS = ["env-a", "env-b"]

VALID = """\
title: Sum
kind: output
prompt: What does it print?
environment: env-a
code: |
  print(1 + 1)
options:
  - label: A
    text: "2"
  - label: B
    text: "11"
answer: A
expectation:
  output:
    stdout: "2\\n"
"""


def write(tmp_path: Path, text: str, name: str = "sum.yaml", folder: str = "basics") -> Path:
    path = tmp_path / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_valid_file_loads_with_id_and_set_from_its_path(tmp_path: Path) -> None:
    """id defaults to the file name and set to the folder name."""
    challenge = load_challenge(write(tmp_path, VALID), ENVS)
    assert (challenge.id, challenge.set, challenge.kind) == ("sum", "basics", Kind.OUTPUT)
    assert challenge.qualified_id == "basics/sum"


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    """A YAML syntax error reports the file and the line of the problem."""
    path = write(tmp_path, "title: x\nkind: [output\nprompt: y\n")
    with pytest.raises(ChallengeError, match=r"sum.yaml:3: invalid YAML"):
        load_challenge(path, ENVS)


def test_missing_field_is_named(tmp_path: Path) -> None:
    """A missing required field is named (reported at the top of the file)."""
    path = write(tmp_path, VALID.replace("prompt: What does it print?\n", ""))
    with pytest.raises(ChallengeError, match=r"sum.yaml:1: field 'prompt': Field required"):
        load_challenge(path, ENVS)


def test_wrong_type_names_line_and_field(tmp_path: Path) -> None:
    """A value of the wrong type is reported at its own line."""
    path = write(tmp_path, VALID.replace("answer: A", "answer: A\nattempts: many"))
    with pytest.raises(
        ChallengeError, match=r"sum.yaml:13: field 'attempts': Input should be a valid integer"
    ):
        load_challenge(path, ENVS)


def test_nested_field_error_points_into_the_list(tmp_path: Path) -> None:
    """An error inside an option names the option's index and its line."""
    path = write(tmp_path, VALID.replace('    text: "11"', '    text: "11"\n    colour: red'))
    with pytest.raises(ChallengeError, match=r"sum.yaml:12: field 'options.1.colour': Extra"):
        load_challenge(path, ENVS)


def test_unknown_environment(tmp_path: Path) -> None:
    """An environment that does not exist is refused with the known ones listed."""
    path = write(tmp_path, VALID.replace("environment: env-a", "environment: env-z"))
    with pytest.raises(
        ChallengeError,
        match=r"sum.yaml:4: field 'environment': unknown "
        r"environment 'env-z'; known: env-a, env-b",
    ):
        load_challenge(path, ENVS)


def test_unknown_override_environment(tmp_path: Path) -> None:
    """Per-environment expectations must name real environments too."""
    text = VALID + "environments:\n  env-q:\n    note: x\n"
    with pytest.raises(ChallengeError, match=r"field 'environments.env-q': unknown environment"):
        load_challenge(write(tmp_path, text), ENVS)


def test_duplicate_id_names_both_files(tmp_path: Path) -> None:
    """Two files with the same id in one set are refused, naming both."""
    write(tmp_path, VALID, name="sum.yaml")
    write(tmp_path, "id: sum\n" + VALID, name="other.yaml")
    with pytest.raises(ChallengeError) as caught:
        load_challenges([tmp_path], ENVS)
    assert str(caught.value) == (
        f"{tmp_path}/basics/sum.yaml:1: field 'id': duplicate id 'basics/sum' (from the file "
        f"name 'sum.yaml'), also in {tmp_path}/basics/other.yaml (from its 'id:' field, line 1): "
        "rename one file, or set 'id:'"
    )


def test_answer_must_be_an_option(tmp_path: Path) -> None:
    """A key that is not among the options is refused."""
    path = write(tmp_path, VALID.replace("answer: A", "answer: C"))
    with pytest.raises(ChallengeError, match=r"answer 'C' is not one of the options"):
        load_challenge(path, ENVS)


def test_expectation_must_match_the_kind(tmp_path: Path) -> None:
    """An output challenge with a state expectation is refused."""
    text = VALID.replace('  output:\n    stdout: "2\\n"\n', "  state:\n    values: {x: 1}\n")
    with pytest.raises(ChallengeError, match=r"the expectation must set exactly 'output'"):
        load_challenge(write(tmp_path, text), ENVS)


def test_set_must_match_folder(tmp_path: Path) -> None:
    """A set field that disagrees with the folder is refused."""
    path = write(tmp_path, "set: other\n" + VALID)
    with pytest.raises(ChallengeError, match=r"field 'set': 'other' differs from the folder"):
        load_challenge(path, ENVS)


def test_not_a_mapping(tmp_path: Path) -> None:
    """A file that is not a mapping is refused."""
    with pytest.raises(ChallengeError, match=r"sum.yaml:1: a challenge file is a mapping"):
        load_challenge(write(tmp_path, "- just\n- a list\n"), ENVS)


def test_shipped_challenges_load() -> None:
    """Every challenge in the repository loads against the shipped environments."""
    root = Path(__file__).resolve().parents[3]
    envs = [p.name for p in (root / "images").iterdir() if (p / "environment.toml").exists()]
    challenges = load_challenges([root / "challenges"], envs)
    ids = {c.qualified_id for c in challenges}
    assert {
        f"async-test-mastery/{name}"
        for name in (
            "q1-async-test-output",
            "q2-which-option-is-a-syntax-error",
            "q3-why-runtime-error",
            "q4-counter-after-test",
            "q5-test-isolation",
        )
    } <= ids
    assert {c.kind for c in challenges} == set(Kind)  # io: challenges/io-basics


def test_state_text_options_need_a_single_value(tmp_path: Path) -> None:
    """Text options of a state challenge can only be checked against one variable."""
    text = VALID.replace("kind: output", "kind: state").replace(
        '  output:\n    stdout: "2\\n"\n', "  state:\n    values: {a: 1, b: 2}\n"
    )
    with pytest.raises(ChallengeError, match=r"expects exactly one value"):
        load_challenge(write(tmp_path, text), ENVS)


OUTCOME = """\
title: Skipped
kind: outcome
prompt: What does pytest report?
mode: pytest
environment: env-a
filterwarnings: [error, "ignore::DeprecationWarning"]
code: |
  async def test_ping():
      pass
options:
  - label: A
    text: 1 skipped, 1 warning
  - label: B
    text: 1 failed
answer: A
expectation:
  outcome:
    summary: 1 skipped, 1 warning
    tests:
      test_ping:
        outcome: skipped
        message:
          contains: no async plugin
  warnings:
    - category: PytestUnhandledCoroutineWarning
environments:
  env-b:
    expectation:
      exception:
        type: TypeError
"""


def test_outcome_expectation_warnings_and_filters_load(tmp_path: Path) -> None:
    """Pytest outcomes, warning rules, -W filters and an override of another kind load."""
    challenge = load_challenge(write(tmp_path, OUTCOME, "skipped.yaml"), ENVS)
    assert challenge.kind is Kind.OUTCOME
    assert challenge.filterwarnings == ("error", "ignore::DeprecationWarning")
    expectation = challenge.expectation_for("env-a")
    assert expectation is not None and expectation.outcome is not None
    assert expectation.outcome.tests["test_ping"].outcome == "skipped"
    assert [w.category for w in expectation.warnings] == ["PytestUnhandledCoroutineWarning"]
    assert (challenge.kind_in("env-a"), challenge.kind_in("env-b")) == (
        Kind.OUTCOME,
        Kind.EXCEPTION,
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    summary: 1 skipped, 1 warning\n",
            "    summary: one skipped\n",
            r"skipped.yaml:\d+: field 'expectation.outcome': Value error, 'one skipped' is not "
            r"a pytest summary line",
        ),
        (
            "        outcome: skipped\n",
            "        outcome: skip\n",
            r"field 'expectation.outcome.tests.test_ping.outcome': Input should be 'passed'",
        ),
        (
            "mode: pytest\n",
            "mode: script\n",
            r"skipped.yaml:4: field 'mode': Value error, the expectation: "
            r"outcome expectations need mode: pytest, and the file has mode: script; "
            r"hint: add 'mode: pytest'",
        ),
        (
            "filterwarnings: [error,",
            "filterwarnings: [raise,",
            r"filterwarnings entry 'raise' is not a -W option",
        ),
        (
            "    text: 1 failed\n",
            "    text: It fails because the loop is closed\n",
            r"text options of an outcome challenge are either all pytest summary lines",
        ),
        (
            "      exception:\n        type: TypeError\n",
            "      tests:\n        code: 'def test_a(): pass'\n",
            r"environments.env-b.expectation: only a tests challenge expects tests",
        ),
        (
            "      exception:\n        type: TypeError\n",
            "      exception:\n        type: TypeError\n      state:\n        values: {a: 1}\n",
            r"environments.env-b.expectation must set exactly one of output, exception",
        ),
    ],
)
def test_outcome_file_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    """Malformed outcomes, filters, mixed options and overrides are refused precisely."""
    assert old in OUTCOME
    path = write(tmp_path, OUTCOME.replace(old, new), "skipped.yaml")
    with pytest.raises(ChallengeError, match=message):
        load_challenge(path, ENVS)


def test_a_syntax_expectation_cannot_expect_warnings(tmp_path: Path) -> None:
    """Nothing runs for a syntax error, so warning rules on one are refused."""
    text = (
        VALID.replace("kind: output", "kind: syntax")
        .replace("code: |\n  print(1 + 1)\n", "code: |\n  bad =\n")
        .replace(
            '  output:\n    stdout: "2\\n"\n', "  syntax: {}\n  warnings:\n    - absent: true\n"
        )
    )
    with pytest.raises(ChallengeError, match=r"syntax expectations cannot expect warnings"):
        load_challenge(write(tmp_path, text), ENVS)


SEVERAL = """\
title: Cart
kind: tests
mode: pytest
prompt: Write cart.py.
environment: env-a
code: |
  def total(items):
      return 0
expectation:
  tests:
    solution_file: cart.py
    files:
      test_total.py: |
        def test_a(): pass
      {name}: |
        x = 1
    points:
      {points}: 2
"""


def test_a_bad_hidden_file_name_points_at_its_key(tmp_path: Path) -> None:
    """A hidden file name that is not allowed is reported on its own line, by its key."""
    path = write(tmp_path, SEVERAL.format(name="sub/helpers.py", points="test_a"), "cart.yaml")
    with pytest.raises(ChallengeError) as caught:
        load_challenge(path, ENVS)
    message = str(caught.value)
    assert message.startswith(f"{path}:15: field 'expectation.tests.files.sub/helpers.py': ")
    assert "a Python file is a module name + .py, beside the solution" in message


def test_points_naming_no_test_point_at_the_points_field(tmp_path: Path) -> None:
    """Points for a test that does not exist: the points line, and the tests there are."""
    path = write(tmp_path, SEVERAL.format(name="helpers.py", points="test_b"), "cart.yaml")
    with pytest.raises(ChallengeError) as caught:
        load_challenge(path, ENVS)
    assert str(caught.value) == (
        f"{path}:17: field 'expectation.tests.points': Value error, points name unknown "
        "tests ['test_b']; tests are ['test_a']"
    )


def test_several_hidden_files_load(tmp_path: Path) -> None:
    """A helper beside a test file loads; the tests are found at load."""
    path = write(tmp_path, SEVERAL.format(name="helpers.py", points="test_a"), "cart.yaml")
    challenge = load_challenge(path, ENVS)
    assert challenge.expectation is not None
    tests = challenge.expectation.tests
    assert tests is not None
    assert [t.nodeid for t in tests.expected()] == ["test_total.py::test_a"]


def test_every_problem_of_a_file_is_reported_at_its_own_line(tmp_path: Path) -> None:
    """Field errors and an unknown environment of one file all come back, sorted by line."""
    text = (
        VALID.replace("environment: env-a", "environment: env-z")
        .replace("kind: output", "kind: output\ndifficulty: hard")
        .replace("answer: A", "answer: A\nattempts: many")
    )
    path = write(tmp_path, text)
    with pytest.raises(ChallengeError) as caught:
        load_challenge(path, ENVS)
    assert str(caught.value).splitlines() == [
        f"{path}:3: field 'difficulty': Input should be 'beginner', 'intermediate', "
        "'advanced' or 'expert'",
        f"{path}:5: field 'environment': unknown environment 'env-z'; known: env-a, env-b",
        f"{path}:14: field 'attempts': Input should be a valid integer, unable to parse "
        "string as an integer",
    ]


def test_every_broken_file_of_a_folder_is_reported_and_the_valid_ones_load(
    tmp_path: Path,
) -> None:
    """read_challenges keeps going past a broken file; load_challenges names them all."""
    write(tmp_path, VALID, name="good.yaml")
    first = write(tmp_path, VALID.replace("answer: A", "answer: C"), name="bad-key.yaml")
    second = write(tmp_path, "title: [unclosed\n", name="bad-yaml.yaml")
    result = read_challenges([tmp_path], ENVS)
    assert [c.qualified_id for c in result.challenges] == ["basics/good"]
    assert [str(p) for p in result.problems] == [
        f"{first}:12: field 'answer': Value error, answer 'C' is not one of the options ['A', 'B']",
        f"{second}:2: invalid YAML: expected ',' or ']', but got '<stream end>'",
    ]
    with pytest.raises(ChallengeError) as caught:
        load_challenges([tmp_path], ENVS)
    assert str(caught.value).splitlines() == [str(p) for p in result.problems]


def test_an_id_from_the_file_name_says_so_with_its_pattern_intact(tmp_path: Path) -> None:
    """A file name that is not a slug: the pattern whole, and where the id came from."""
    path = write(tmp_path, VALID, name="Sum_Two.yaml")
    with pytest.raises(ChallengeError) as caught:
        load_challenge(path, ENVS)
    assert str(caught.value) == (
        f"{path}:1: field 'id': String should match pattern '^[a-z0-9][a-z0-9-]{{0,62}}$'; "
        "the id comes from the file name 'Sum_Two.yaml': rename the file, or set 'id:'"
    )


def test_an_id_given_in_the_file_is_reported_on_its_line(tmp_path: Path) -> None:
    """An explicit id that is not a slug is reported at its key, as coming from there."""
    path = write(tmp_path, "title: Sum\nid: Sum Two\n" + VALID.removeprefix("title: Sum\n"))
    with pytest.raises(ChallengeError) as caught:
        load_challenge(path, ENVS)
    assert str(caught.value) == (
        f"{path}:2: field 'id': String should match pattern '^[a-z0-9][a-z0-9-]{{0,62}}$'; "
        "the id comes from its 'id:' field, line 2"
    )


def test_a_set_from_the_folder_name_says_so(tmp_path: Path) -> None:
    """A folder name that is not a slug: the set comes from it, so the folder is renamed."""
    path = write(tmp_path, VALID, folder="My Basics")
    with pytest.raises(ChallengeError) as caught:
        load_challenge(path, ENVS)
    assert str(caught.value) == (
        f"{path}:1: field 'set': String should match pattern '^[a-z0-9][a-z0-9-]{{0,62}}$'; "
        "the set comes from the folder name 'My Basics': rename the folder"
    )


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (
            '    stdout: "2\\n"\n',
            '    match: regex\n    stdout: "2(\\n"\n',
            "16: field 'expectation.output.stdout': Value error, invalid regex '2(\\n': "
            "missing ), unterminated subpattern at position 1 (line 1, column 2)",
        ),
        (
            '  output:\n    stdout: "2\\n"\n',
            '  output:\n    stdout: "2\\n"\n  warnings:\n    - message:\n        regex: "[a-"\n',
            "18: field 'expectation.warnings.0.message.regex': Value error, invalid regex "
            "'[a-': unterminated character set at position 0",
        ),
    ],
)
def test_an_invalid_regex_is_a_loader_error_at_its_line(
    tmp_path: Path, old: str, new: str, where: str
) -> None:
    """Regexes compile at load: re's own message, at the regex's own line."""
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new))
    with pytest.raises(ChallengeError) as caught:
        load_challenge(path, ENVS)
    assert str(caught.value) == f"{path}:{where}"


def test_an_invalid_message_regex_is_a_loader_error(tmp_path: Path) -> None:
    """An exception's message regex compiles at load too, reported at its line."""
    text = OUTCOME.replace(
        "        type: TypeError\n",
        "        type: TypeError\n        message:\n          regex: 'a)'\n",
    )
    path = write(tmp_path, text, "skipped.yaml")
    with pytest.raises(ChallengeError) as caught:
        load_challenge(path, ENVS)
    assert str(caught.value) == (
        f"{path}:32: field 'environments.env-b.expectation.exception.message.regex': "
        "Value error, invalid regex 'a)': unbalanced parenthesis at position 1"
    )


def test_an_unknown_dotted_environment_points_at_its_key(tmp_path: Path) -> None:
    """Environment names have dots; an unknown one under environments: is at its own key."""
    text = VALID + "environments:\n  env-a:\n    note: x\n  fastapi-9.9-httpx-0.99:\n    note: y\n"
    path = write(tmp_path, text)
    with pytest.raises(ChallengeError) as caught:
        load_challenge(path, ENVS)
    assert str(caught.value) == (
        f"{path}:19: field 'environments.fastapi-9.9-httpx-0.99': unknown environment "
        "'fastapi-9.9-httpx-0.99'; known: env-a, env-b"
    )


def test_hidden_tests_without_pytest_mode_are_refused_at_kind_with_a_hint(
    tmp_path: Path,
) -> None:
    """A tests challenge left in script mode can never pass: refused at kind, with the fix."""
    path = write(
        tmp_path,
        SEVERAL.replace("mode: pytest\n", "").format(name="helpers.py", points="test_a"),
        "cart.yaml",
    )
    with pytest.raises(ChallengeError) as caught:
        load_challenge(path, ENVS)
    assert str(caught.value) == (
        f"{path}:2: field 'mode': Value error, the expectation: tests expectations need "
        "mode: pytest, and the file has no mode (script); hint: add 'mode: pytest' (hidden "
        "tests and pytest outcomes only exist when pytest runs the code)"
    )


def test_a_rule_on_several_fields_is_reported_at_the_field_to_change(tmp_path: Path) -> None:
    """A key that is not an option is reported on the answer's line, not at line 1."""
    path = write(tmp_path, VALID.replace("answer: A", "answer: C"))
    with pytest.raises(ChallengeError) as caught:
        load_challenge(path, ENVS)
    assert str(caught.value) == (
        f"{path}:12: field 'answer': Value error, answer 'C' is not one of the options ['A', 'B']"
    )
