import copy
import json

import pytest

import settings
from merge import merge

PRISTINE = copy.deepcopy(settings.DEFAULTS)


@pytest.fixture
def files(tmp_path):
    def write(name, data):
        p = tmp_path / name
        p.write_text(json.dumps(data))
        return str(p)

    return write


def test_partial_override_keeps_sibling_keys(files):
    base = files("settings.json", {"database": {"host": "db.prod", "port": 5432, "user": "app", "password": "s3cret"}})
    local = files("settings.local.json", {"database": {"host": "localhost"}})
    cfg = settings.load([base, local])
    assert cfg["database"] == {
        "host": "localhost",
        "port": 5432,
        "name": "app",
        "user": "app",
        "password": "s3cret",
        "options": {"sslmode": "prefer", "connect_timeout": 10},
    }


def test_override_three_levels_deep(files):
    local = files("local.json", {"database": {"options": {"sslmode": "require"}}})
    cfg = settings.load([local])
    assert cfg["database"]["options"] == {"sslmode": "require", "connect_timeout": 10}
    assert cfg["database"]["port"] == 5432


def test_layers_apply_in_order(files):
    a = files("a.json", {"cache": {"ttl": 60}, "debug": True})
    b = files("b.json", {"cache": {"backend": "redis"}})
    c = files("c.json", {"debug": False})
    cfg = settings.load([a, b, files("missing-is-skipped.json", {}) + ".nope", c])
    assert cfg["cache"] == {"backend": "redis", "ttl": 60}
    assert cfg["debug"] is False


def test_lists_and_scalars_replace():
    base = {"hosts": ["a", "b"], "db": {"port": 1}, "x": {"y": 1}}
    out = merge(base, {"hosts": ["c"], "db": 5, "x": {"y": {"z": 2}}})
    assert out == {"hosts": ["c"], "db": 5, "x": {"y": {"z": 2}}}


def test_dict_replaces_scalar_and_new_keys_are_added():
    out = merge({"a": 1}, {"a": {"b": 2}, "c": {"d": [1]}})
    assert out == {"a": {"b": 2}, "c": {"d": [1]}}


def test_explicit_null_overrides():
    out = merge({"db": {"password": "x"}}, {"db": {"password": None}})
    assert out == {"db": {"password": None}}


def test_inputs_are_not_modified():
    base = {"a": {"b": {"c": 1}}, "l": [1]}
    override = {"a": {"b": {"d": 2}}}
    base_before, override_before = copy.deepcopy(base), copy.deepcopy(override)
    out = merge(base, override)
    assert out == {"a": {"b": {"c": 1, "d": 2}}, "l": [1]}
    out["a"]["b"]["c"] = 99
    out["l"].append(2)
    assert base == base_before
    assert override == override_before


def test_result_does_not_alias_override():
    override = {"a": {"b": [1, 2]}}
    out = merge({}, override)
    out["a"]["b"].append(3)
    assert override == {"a": {"b": [1, 2]}}


def test_tweaking_loaded_config_does_not_leak():
    cfg = settings.load([])
    cfg["cache"]["ttl"] = 0
    cfg["database"]["options"]["sslmode"] = "disable"
    cfg["allowed_hosts"].append("evil.example")
    assert settings.DEFAULTS == PRISTINE
    assert settings.load([]) == PRISTINE
