"""Plans are versioned data files: the shipped plans load and say everything KH 7860 asks, and a
bad plan file is refused with a message that names the file and the line."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from core.figures.definitions import METRICS
from core.figures.index766_scores import INDICATORS
from core.plans import PLANS_DIR_ENV, Plan, PlanError, load_plans
from core.plans.model import INDEX766_PREFIX, DateRange

pytestmark = pytest.mark.pure

KH7860 = "kh-7860-2022@1"
DISTRICTS_2022 = {
    "NHATRANG",
    "CAMRANH",
    "NINHHOA",
    "DIENKHANH",
    "CAMLAM",
    "VANNINH",
    "KHANHVINH",
    "KHANHSON",
    "TRUONGSA",
}

VALID = """\
id: test-plan
version: 1
title: Kế hoạch thử
document: KH thử/KH-UBND
issued_by: UBND tỉnh Khánh Hòa
valid: {from: 2022-01-01, to: 2022-12-31}
targets:
  - id: land-late
    text: Tỷ lệ hồ sơ trễ hạn lĩnh vực đất đai dưới 2%
    clause: A.IV.5
    metric: late_rate
    scope:
      agencies:
        - STNMT
        - NHATRANG
      domains: [dat_dai]
    comparator: "<"
    threshold: 0.02
    in_charge: STNMT
  - id: online
    text: Tỷ lệ hồ sơ trực tuyến đạt từ 30% trở lên
    clause: A.VIII.7
    metric: online_share
    comparator: ">="
    threshold: 0.3
    in_charge: Các cơ quan, đơn vị, địa phương
"""

THIRD = """\
  - id: {id}
    text: Mục tiêu thứ ba
    clause: X.1
    metric: {metric}
    period: {period}
    comparator: ">="
    threshold: 0.35
    in_charge: Văn phòng UBND tỉnh
"""


@pytest.fixture(scope="module")
def plans() -> dict[str, Plan]:
    return load_plans(extra_dir=None)


def write(folder: Path, text: str, name: str = "plan.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line containing `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def refused(folder: Path, text: str) -> PlanError:
    path = write(folder, text)
    with pytest.raises(PlanError) as caught:
        load_plans(extra_dir=folder, packaged=False)
    assert caught.value.file == str(path)
    return caught.value


def test_both_plans_load_side_by_side(plans: dict[str, Plan]) -> None:
    # Catches: a plan file not shipped as package data, or a second plan replacing the first
    # (plans must be keyed by id@version, not by a single "current plan").
    assert {KH7860, "kh-2023-example@1"} <= set(plans)
    assert not plans[KH7860].illustrative
    assert plans["kh-2023-example@1"].illustrative
    assert "VÍ DỤ" in plans["kh-2023-example@1"].title
    assert plans[KH7860].valid == DateRange(start=date(2022, 1, 1), end=date(2022, 12, 31))


def test_every_metric_referenced_exists(plans: dict[str, Plan]) -> None:
    # Catches: a metric renamed or an indicator made "missing" in the catalogue while a plan
    # still points at it (the target would then never get a status).
    computable = {i.id for i in INDICATORS if not i.missing_reason}
    for plan in plans.values():
        named = [t.metric for t in plan.targets]
        named += [u.related_metric for u in plan.unmeasurable if u.related_metric]
        for metric in named:
            if metric.startswith(INDEX766_PREFIX):
                assert metric.removeprefix(INDEX766_PREFIX) in computable, metric
            else:
                assert metric in METRICS, metric


def test_every_target_says_where_it_comes_from(plans: dict[str, Plan]) -> None:
    # Catches: a target without the plan's words, its clause or its agency in charge, which an
    # auditor could not trace back to the plan or to whoever answers for it.
    for plan in plans.values():
        for t in plan.targets:
            assert t.text.strip() and t.clause.strip() and t.in_charge.strip(), t.id


def test_kh7860_encodes_every_measurable_target(plans: dict[str, Plan]) -> None:
    # Catches: a target of metrics-reference §7 silently dropped or encoded with the wrong
    # comparator, threshold or scope.
    plan = plans[KH7860]
    encoded = {(t.clause, t.metric, t.comparator, t.threshold) for t in plan.targets}
    assert encoded >= {
        ("A.IV.5", "late_rate", "<", 0.02),
        ("A.IV.3", "index766:1.2", ">=", 1.0),
        ("A.IV.7, B.5.2", "feedback_answered_on_time", ">=", 1.0),
        ("A.IV.7, B.5.3", "feedback_published_share", ">=", 1.0),
        ("A.VIII.7", "online_share", ">=", 0.3),
        ("A.VIII.7", "online_payment_share", ">=", 0.3),
        ("A.VIII.7", "index766:3.5b", ">=", 0.6),
        ("A.VIII.8", "digitized_share", ">=", 1.0),
        ("B.4.1", "apology_compliance", ">=", 1.0),
    }
    land = plan.target("A.IV.5-land-late")
    assert land.scope.domains == ("dat_dai",)
    assert set(land.scope.agencies) == {"STNMT"} | DISTRICTS_2022
    assert land.in_charge == "STNMT"
    assert land.meets(0.019) and not land.meets(0.02)
    # The plan's own provincial figures are judged on the province, not per agency.
    assert plan.target("A.VIII.7-online-share").applies_to == "scope"


def test_unmeasurable_targets_are_listed_with_why(plans: dict[str, Plan]) -> None:
    # Catches: a target events cannot measure disappearing from the plan instead of being shown
    # as unmeasurable, with its reason, in both languages.
    plan = plans[KH7860]
    assert plan.unmeasurable
    for item in plan.unmeasurable:
        assert item.why.vi.strip() and item.why.en.strip() and item.clause.strip(), item.id
    clauses = {u.clause for u in plan.unmeasurable}
    assert {"A.IV.5", "A.IV.6", "A.VIII.6", "A.VIII.7", "I.1 (Mục đích)"} <= clauses
    quotas = plan.unmeasurable[
        [u.id for u in plan.unmeasurable].index("A.VIII.7-agency-online-quotas")
    ]
    assert "another document" in quotas.why.en


def test_a_new_plan_file_loads_from_the_env_dir_with_no_code_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Catches: plans hard-wired in code, or MOTCUA_PLANS_DIR ignored.
    write(tmp_path, edit(VALID, "id: test-plan", "id: kh-2024-test"), "kh-2024.yml")
    monkeypatch.setenv(PLANS_DIR_ENV, str(tmp_path))
    loaded = load_plans()
    assert {KH7860, "kh-2023-example@1", "kh-2024-test@1"} <= set(loaded)
    assert loaded["kh-2024-test@1"].target("online").threshold == 0.3


def test_disjoint_periods_are_not_an_overlap(tmp_path: Path) -> None:
    # Catches: an overlap check so coarse that a plan cannot split a metric by half-year.
    text = VALID + THIRD.format(
        id="h1", metric="online_share", period="{from: 2022-01-01, to: 2022-06-30}"
    )
    h2 = "    period: {from: 2022-07-01, to: 2022-12-31}\n"
    text = edit(text, "    threshold: 0.3\n", "    threshold: 0.3\n" + h2)
    write(tmp_path, text)
    assert "test-plan@1" in load_plans(extra_dir=tmp_path, packaged=False)


def test_error_names_file_line_target_and_closest_metric(tmp_path: Path) -> None:
    # Catches: an error an author cannot act on (no file, no line, no hint).
    text = edit(VALID, "metric: late_rate", "metric: late_rat")
    error = refused(tmp_path, text)
    line = line_of(text, "metric: late_rat")
    assert str(error) == (
        f"{tmp_path / 'plan.yaml'}:{line}: target 'land-late': unknown metric 'late_rat' "
        "(did you mean 'late_rate'?)"
    )


BAD_FILES = [
    # (what is wrong, edit (old, new), the line the error must name, words the message must hold)
    ("unknown agency in scope", ("- STNMT", "- STNMTT"), "- STNMTT", "unknown agency 'STNMTT'"),
    ("unknown domain", ("[dat_dai]", "[dat_dia]"), "[dat_dia]", "did you mean 'dat_dai'"),
    (
        "unknown level",
        ("domains: [dat_dai]", "levels: [huyen]"),
        "levels: [huyen]",
        "unknown level",
    ),
    ("threshold 1.5", ("threshold: 0.3", "threshold: 1.5"), "threshold: 1.5", "out of range"),
    (
        "negative threshold",
        ("threshold: 0.02", "threshold: -0.02"),
        "threshold: -0.02",
        "out of range",
    ),
    (
        "unknown 766 indicator",
        ("metric: online_share", "metric: index766:3.55"),
        "index766:3.55",
        "indicator",
    ),
    (
        "766 indicator without data",
        ("metric: online_share", "metric: index766:1.4"),
        "index766:1.4",
        "cannot be computed",
    ),
    (
        "district in a 2026 plan",
        ("valid: {from: 2022-01-01, to: 2022-12-31}", "valid: {from: 2026-01-01, to: 2026-12-31}"),
        "- NHATRANG",
        "does not exist",
    ),
    (
        "feedback by domain",
        ("metric: late_rate", "metric: feedback_answered_on_time"),
        "domains: [dat_dai]",
        "feedback has no domain",
    ),
    (
        "unknown field",
        ("threshold: 0.3", "treshold: 0.3"),
        "treshold: 0.3",
        "did you mean 'threshold'",
    ),
    ("missing in_charge", ("    in_charge: STNMT\n", ""), "- id: land-late", "in_charge"),
    ("bad comparator", ('comparator: "<"', 'comparator: "=<"'), 'comparator: "=<"', "comparator"),
    (
        "bad period",
        ("threshold: 0.3", "threshold: 0.3\n    period: yearly"),
        "period: yearly",
        "period must be",
    ),
    (
        "period outside the plan",
        ("threshold: 0.3", "threshold: 0.3\n    period: {from: 2022-06-01, to: 2023-01-31}"),
        "period: {from",
        "outside",
    ),
    (
        "upside-down period",
        ("threshold: 0.3", "threshold: 0.3\n    period: {from: 2022-06-01, to: 2022-05-31}"),
        "period: {from",
        "before",
    ),
    (
        "unknown agency in charge",
        ("in_charge: STNMT", "in_charge: STMT"),
        "in_charge: STMT",
        "unknown agency 'STMT'",
    ),
    (
        "duplicate key",
        ("    clause: A.VIII.7\n", "    clause: A.VIII.7\n    clause: B.1\n"),
        "clause: B.1",
        "duplicate key 'clause'",
    ),
    (
        "YAML syntax error",
        ("text: Tỷ lệ hồ sơ trực tuyến", "text: Tỷ lệ: hồ sơ trực tuyến"),
        "text: Tỷ lệ: hồ sơ",
        "YAML syntax error",
    ),
    (
        "a target that can never be met",
        ('comparator: ">="\n    threshold: 0.3', 'comparator: ">"\n    threshold: 1.0'),
        "threshold: 1.0",
        "never be met",
    ),
]


@pytest.mark.parametrize(
    ("old_new", "needle", "words"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES]
)
def test_bad_plan_file_is_refused_at_the_right_line(
    tmp_path: Path, old_new: tuple[str, str], needle: str, words: str
) -> None:
    # Catches: a bad plan accepted (a target that silently never gets a status), or an error
    # that points at the wrong line or says nothing useful.
    text = edit(VALID, *old_new)
    error = refused(tmp_path, text)
    assert error.line == line_of(text, needle), str(error)
    assert words in error.message, str(error)


def test_overlapping_targets_are_refused(tmp_path: Path) -> None:
    # Catches: two targets judging the same metric, scope and days with different thresholds,
    # whose statuses would contradict each other.
    text = VALID + THIRD.format(id="online-quarterly", metric="online_share", period="quarter")
    error = refused(tmp_path, text)
    assert error.line == line_of(text, "- id: online-quarterly")
    assert "overlaps target 'online'" in error.message
    assert f"(line {line_of(text, '- id: online')})" in error.message


def test_duplicate_target_id_is_refused(tmp_path: Path) -> None:
    # Catches: two targets under one id, so a status or alert could not say which it is about.
    text = VALID + THIRD.format(id="land-late", metric="digitized_share", period="year")
    error = refused(tmp_path, text)
    assert error.line == line_of(text, "- id: land-late", nth=2)
    assert f"duplicate id 'land-late' (first on line {line_of(text, '- id: land-late')})" in (
        error.message
    )


def test_per_agency_quota_outside_the_scope_is_refused(tmp_path: Path) -> None:
    # Catches: a quota for an agency the target does not cover, which would never be judged.
    text = edit(
        VALID,
        "    in_charge: STNMT\n",
        "    in_charge: STNMT\n    per_agency:\n      - {agency: SYT, threshold: 0.01}\n",
    )
    error = refused(tmp_path, text)
    assert error.line == line_of(text, "{agency: SYT")
    assert "outside the target's scope" in error.message


def test_the_same_plan_in_two_files_is_refused(tmp_path: Path) -> None:
    # Catches: a second file silently replacing a plan of the same id@version.
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, VALID, "b.yaml")
    with pytest.raises(PlanError) as caught:
        load_plans(extra_dir=tmp_path, packaged=False)
    assert caught.value.file == str(tmp_path / "b.yaml")
    assert caught.value.line == 1
    assert f"already defined in {tmp_path / 'a.yaml'}" in caught.value.message


def test_plans_check_command_says_file_line_and_exits_1(tmp_path: Path) -> None:
    # Catches: `motcua plans check` passing a file `motcua up` would refuse at its start, or an
    # id@version that is already loaded (it would stop the start as a duplicate).
    good = write(tmp_path, VALID, "good.yaml")
    bad_text = edit(VALID, "metric: late_rate", "metric: late_rat")
    bad = write(tmp_path, bad_text, "bad.yaml")
    again = write(tmp_path, edit(VALID, "id: test-plan", "id: kh-7860-2022"), "again.yaml")

    def run(*files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "motcua.cli", "plans", "check", *map(str, files)],
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if k != PLANS_DIR_ENV},
            check=False,
        )

    ok = run(good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK  test-plan@1  2022-01-01…2022-12-31  2 chỉ tiêu")
    failed = run(good, bad, again)
    assert failed.returncode == 1
    lines = failed.stdout.splitlines()
    assert lines[0].startswith("OK  test-plan@1")
    assert lines[1].startswith(f"LỖI {bad}:{line_of(bad_text, 'late_rat')}: ")
    assert "did you mean 'late_rate'" in lines[1]
    assert (
        lines[2]
        == f"LỖI {again}:1: plan '{KH7860}' is already loaded; a changed plan gets a new version"
    )
