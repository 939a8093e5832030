package config

import "testing"

const doc = `{
  "port": 8080,
  "debug": false,
  "db": {
    "host": "localhost",
    "port": 5432,
    "password": "",
    "pool": {"max_size": 10, "idle": {"timeout_s": 30}}
  },
  "tags": ["a", "b"],
  "ratio": 0.25
}`

func load(t *testing.T, env ...string) *Config {
	t.Helper()
	c, err := Load([]byte(doc), env)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantString(t *testing.T, c *Config, key, want string) {
	t.Helper()
	got, ok := c.String(key)
	if !ok || got != want {
		t.Errorf("%s = %q (present %v), want %q", key, got, ok, want)
	}
}

func TestFileValuesAtEveryDepth(t *testing.T) {
	c := load(t)
	wantString(t, c, "port", "8080")
	wantString(t, c, "debug", "false")
	wantString(t, c, "db.host", "localhost")
	wantString(t, c, "db.port", "5432")
	wantString(t, c, "db.pool.max_size", "10")
	wantString(t, c, "db.pool.idle.timeout_s", "30")
	wantString(t, c, "ratio", "0.25")
	if n, err := c.Int("db.pool.max_size"); err != nil || n != 10 {
		t.Errorf("Int(db.pool.max_size) = %d, %v", n, err)
	}
	for _, bogus := range []string{"pool.max_size", "idle.timeout_s", "max_size", "tags"} {
		if _, ok := c.String(bogus); ok {
			t.Errorf("unexpected key %q", bogus)
		}
	}
	if c.Keys() != 8 {
		t.Errorf("Keys() = %d, want 8", c.Keys())
	}
}

func TestEnvOverridesAtEveryDepth(t *testing.T) {
	c := load(t,
		"APP_PORT=9000",
		"APP_DB_HOST=db.internal",
		"APP_DB_POOL_MAX_SIZE=50",
		"APP_DB_POOL_IDLE_TIMEOUT_S=5",
		"HOME=/root",
	)
	wantString(t, c, "port", "9000")
	wantString(t, c, "db.host", "db.internal")
	wantString(t, c, "db.port", "5432")
	wantString(t, c, "db.pool.max_size", "50")
	wantString(t, c, "db.pool.idle.timeout_s", "5")
}

func TestEnvValuesMayContainEquals(t *testing.T) {
	c := load(t, "APP_DB_PASSWORD=c2VjcmV0Cg==", "APP_DB_HOST=a=b=c")
	wantString(t, c, "db.password", "c2VjcmV0Cg==")
	wantString(t, c, "db.host", "a=b=c")
}

func TestEmptyEnvValueOverrides(t *testing.T) {
	c := load(t, "APP_DB_HOST=")
	wantString(t, c, "db.host", "")
}

func TestUnknownVariablesAreIgnored(t *testing.T) {
	c := load(t, "APP_NOPE=1", "APP_DB_USER=x", "NOEQUALS")
	if _, ok := c.String("nope"); ok {
		t.Error("unknown variable became a key")
	}
	if c.Keys() != 8 {
		t.Errorf("Keys() = %d, want 8", c.Keys())
	}
}

func TestBadJSON(t *testing.T) {
	if _, err := Load([]byte(`{"port":`), nil); err == nil {
		t.Fatal("want an error for truncated JSON")
	}
}
