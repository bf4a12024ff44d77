"""Spec loading: the default spec, and one clear error per kind of mistake."""

from pathlib import Path

import pytest
import yaml

from slakit.errors import SlakitError
from slakit.sla.spec import DEFAULT_SPEC, load_spec, parse_spec

SMALL = Path(__file__).parent / "data" / "small_spec.yml"


def test_default_spec_has_the_seed_stories_and_16_endpoints():
    spec = load_spec()
    assert [s.id for s in spec.stories] == ["1.1", "2.2", "4.1", "4.2", "core"]
    assert sum(len(s.endpoints) for s in spec.stories) == 16
    token = spec.story("core").endpoints[2]
    assert token.path == "/api/v1/auth/token" and token.target_ms == 250
    assert "${SLAKIT_SLA_PASSWORD}" in str(token.body)  # never a literal secret
    warm = spec.story("2.2").endpoints[0]
    assert warm.auth == "operator"


def test_default_spec_runs_in_about_a_minute():
    spec = load_spec()
    seconds = sum(max(e.load.planned_duration_s for e in s.endpoints) for s in spec.stories)
    assert 45 <= seconds <= 90


def test_target_sla_overrides_the_default_but_not_explicit_targets():
    spec = load_spec(target_sla_ms=20)
    assert spec.target_ms == 20
    assert spec.story("1.1").endpoints[0].target_ms == 20
    assert spec.story("core").endpoints[2].target_ms == 250


def raw() -> dict:
    return yaml.safe_load(SMALL.read_text())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("stories"), "'stories' is a required property"),
        (
            lambda d: d["stories"][0]["endpoints"][0].update(method="FETCH"),
            "stories[0].endpoints[0].method",
        ),
        (lambda d: d["stories"][0]["endpoints"][0].update(target_ms=0), "target_ms: must be > 0"),
        (lambda d: d["stories"][0].update(colour="red"), "'colour' was unexpected"),
        (lambda d: d["stories"][1].update(id="1.1"), "duplicate story id '1.1'"),
        (lambda d: d["stories"][0]["endpoints"][0].update(auth="admin"), "unknown scheme 'admin'"),
        (lambda d: d["defaults"]["load"].update(duration_s=0.3), "needs at least 59 requests"),
        (lambda d: d["defaults"].update(compliance=1.5), "defaults.compliance"),
        (
            lambda d: d["stories"][0]["endpoints"][0].update(target_ms=float("inf")),
            "stories[0].endpoints[0].target_ms: must be a finite number",
        ),
        (
            lambda d: d["defaults"]["load"].update(rate=float("nan")),
            "defaults.load.rate: must be a finite number",
        ),
    ],
)
def test_invalid_specs_fail_with_one_clear_line(mutate, message):
    data = raw()
    mutate(data)
    with pytest.raises(SlakitError) as err:
        parse_spec(data, source="small_spec.yml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert err.value.exit_code == 2


def test_unknown_story_lists_the_known_ones():
    with pytest.raises(SlakitError, match=r"unknown story '9.9'.*known: 1.1, core"):
        load_spec(SMALL).select(["9.9"])


def test_non_positive_target_sla_is_rejected():
    with pytest.raises(SlakitError, match="--target-sla must be a positive"):
        load_spec(SMALL, target_sla_ms=-1)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(SlakitError, match="cannot read SLA spec"):
        load_spec(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 1\nstories: [\n")
    with pytest.raises(SlakitError, match=r"bad\.yml: line"):
        load_spec(bad)
    assert DEFAULT_SPEC.exists()


def test_an_infinite_target_in_yaml_is_bad_input_not_an_internal_error(tmp_path):
    spec = tmp_path / "inf.yml"
    spec.write_text(SMALL.read_text().replace("target_ms: 15", "target_ms: .inf"))
    with pytest.raises(SlakitError, match=r"defaults\.target_ms: must be a finite number") as err:
        load_spec(spec)
    assert err.value.exit_code == 2
