"""Credential settings fail closed (凭据配置失败即拒绝): dev credentials only when asked for,
a blank or malformed setting refuses to start, every non-admin role names its township."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from services.dispatch.app import create_app as create_dispatch
from services.dispatch.settings import DispatchSettings
from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from shared.auth import StaffDirectory, StaffTokensError, parse_staff_tokens

STAFF = orjson.dumps({"t-admin": {"role": "admin", "township": "*"}}).decode()
KEYS = orjson.dumps({"12345": ["k-12345"]}).decode()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STAFF_TOKENS", "ZHPT_DEV_CREDENTIALS", "DEV_CREDENTIALS", "SERVICE_TOKEN", "INTAKE_API_KEYS"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("blank", ["", " ", "\t\n  "])
def test_blank_staff_tokens_refuse_to_start_without_dev_credentials(blank: str) -> None:
    with pytest.raises(StaffTokensError, match="ZHPT_DEV_CREDENTIALS"):
        StaffDirectory(blank)
    with pytest.raises(ValidationError, match="STAFF_TOKENS is empty"):
        IntakeSettings(staff_tokens=blank)


def test_whitespace_staff_tokens_from_the_environment_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAFF_TOKENS", "   ")
    with pytest.raises(ValidationError, match="STAFF_TOKENS is empty"):
        DispatchSettings()


def test_dev_tokens_only_when_explicitly_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHPT_DEV_CREDENTIALS", "true")
    settings = IntakeSettings()
    assert settings.dev_credentials is True
    directory = StaffDirectory(settings.staff_tokens, dev_credentials=settings.dev_credentials)
    assert directory.dev_mode
    admin = directory.lookup("dev-admin")
    assert admin is not None and admin.role == "admin"
    # Given tokens win over the dev ones even with the switch on.
    given = StaffDirectory(STAFF, dev_credentials=True)
    assert not given.dev_mode and given.lookup("dev-admin") is None and given.lookup("t-admin") is not None


@pytest.mark.parametrize(
    "spec",
    [
        {"t": {"role": "township_admin"}},
        {"t": {"role": "dispatcher", "township": ""}},
        {"t": {"role": "hotline", "township": "  "}},
        {"t": {"role": "unit", "unit": "u1"}},
    ],
)
def test_a_non_admin_role_must_name_its_township(spec: dict[str, dict[str, str]]) -> None:
    with pytest.raises(StaffTokensError, match="must name its township"):
        parse_staff_tokens(orjson.dumps(spec).decode())


def test_a_township_admin_sees_only_the_township_it_names() -> None:
    tokens = parse_staff_tokens(orjson.dumps({"t": {"role": "township_admin", "township": "330127101"}}).decode())
    assert not tokens["t"].whole_county
    assert tokens["t"].sees_township("330127101") and not tokens["t"].sees_township("330127001")
    explicit = parse_staff_tokens(orjson.dumps({"t": {"role": "dispatcher", "township": "*"}}).decode())
    assert explicit["t"].whole_county


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        ("{}", "at least one token"),
        ('{"t": "admin"}', "role, township, unit"),
        ('{"t": {"role": "boss", "township": "*"}}', "STAFF_TOKENS"),
        ('{" t ": {"role": "admin"}}', "non-blank"),
    ],
)
def test_malformed_staff_tokens_refuse_with_a_clear_message(raw: str, says: str) -> None:
    with pytest.raises(StaffTokensError, match=says):
        parse_staff_tokens(raw)


def test_settings_errors_never_echo_the_secret() -> None:
    secret = '{"sekrit-token-123": {"role": "unit", "unit": "u"}}'
    with pytest.raises(ValidationError) as caught:
        IntakeSettings(staff_tokens=secret, service_token="sekrit-service")
    assert "must name its township" in str(caught.value)
    assert "sekrit-token-123" not in str(caught.value) and "sekrit-service" not in str(caught.value)


def test_intake_refuses_blank_producer_keys_and_salt_without_dev_credentials() -> None:
    with pytest.raises(ValueError, match="INTAKE_API_KEYS is empty"):
        create_intake(IntakeSettings(staff_tokens=STAFF, api_keys=" ", phone_hash_salt="s"))
    with pytest.raises(ValueError, match="INTAKE_PHONE_HASH_SALT is empty"):
        create_intake(IntakeSettings(staff_tokens=STAFF, api_keys=KEYS, phone_hash_salt=""))
    with pytest.raises(ValueError, match="INTAKE_API_KEYS"):
        create_intake(IntakeSettings(staff_tokens=STAFF, api_keys='{"12345": [" "]}', phone_hash_salt="s"))
    app = create_intake(IntakeSettings(dev_credentials=True))
    assert app.state.producer_keys.source_of["dev-12345"] == "12345"


def test_dispatch_and_metrics_need_a_service_token_with_custom_staff_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="SERVICE_TOKEN"):
        create_dispatch(DispatchSettings(staff_tokens=STAFF))
    with pytest.raises(ValueError, match="SERVICE_TOKEN"):
        create_metrics(MetricsSettings(staff_tokens=STAFF))
    monkeypatch.setenv("SERVICE_TOKEN", "t-admin")
    app = create_dispatch(DispatchSettings(staff_tokens=STAFF))
    assert app.state.dispatch.source.token == "t-admin"
    assert create_metrics(MetricsSettings(staff_tokens=STAFF)).state.metrics.directory.token == "t-admin"
    # A per-service override still wins.
    assert create_dispatch(DispatchSettings(staff_tokens=STAFF, grid_token="t-other")).state.dispatch.source.token == (
        "t-other"
    )
