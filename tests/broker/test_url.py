"""Broker URLs: a password is used, and never shown or written."""

from __future__ import annotations

import pytest

from swarm.broker.url import PASSWORD_ENVIRONMENT, BrokerUrl, redact


def test_redact_hides_the_password_of_every_url_in_a_text() -> None:
    text = "a mqtt://alice:s3cr%40t@h:1883 and mqtt://bob:x@y:1 but mqtt://carol@z:2"
    assert redact(text) == "a mqtt://alice:***@h:1883 and mqtt://bob:***@y:1 but mqtt://carol@z:2"


def test_a_bad_url_names_itself_without_its_password() -> None:
    with pytest.raises(ValueError) as caught:
        BrokerUrl.parse("mqtt://alice:hunter2@host:99999")
    assert "hunter2" not in str(caught.value) and "alice:***@host" in str(caught.value)
    with pytest.raises(ValueError) as caught:
        BrokerUrl.parse("http://alice:hunter2@host:1883")
    assert "hunter2" not in str(caught.value)


def test_the_password_comes_from_the_environment_when_the_url_has_none(monkeypatch) -> None:
    monkeypatch.setenv(PASSWORD_ENVIRONMENT, "from-env")
    assert BrokerUrl.parse("mqtt://alice@h:1").password == "from-env"
    assert BrokerUrl.parse("mqtt://alice:in-url@h:1").password == "in-url"
    assert BrokerUrl.parse("mqtt://h:1").password is None  # no user: anonymous
    url = BrokerUrl.parse("mqtt://alice@h:1")
    assert "from-env" not in repr(url) and "from-env" not in str(url)
