// Package config loads the service configuration: a JSON file, then
// APP_* environment variables on top.
package config

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Config is the flattened configuration: keys are dotted paths such as
// "db.pool.max_size".
type Config struct {
	values map[string]string
}

// Load parses the JSON document and applies the environment (in
// os.Environ() form) on top of it.
func Load(doc []byte, environ []string) (*Config, error) {
	var raw map[string]any
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	values := map[string]string{}
	flatten("", raw, values)
	applyEnv(values, environ)
	return &Config{values: values}, nil
}

// String returns the value of key.
func (c *Config) String(key string) (string, bool) {
	v, ok := c.values[key]
	return v, ok
}

// Int returns the value of key as an integer.
func (c *Config) Int(key string) (int, error) {
	v, ok := c.values[key]
	if !ok {
		return 0, fmt.Errorf("config: missing key %q", key)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("config: %s: %q is not an integer", key, v)
	}
	return n, nil
}

// Keys returns the number of keys, for diagnostics.
func (c *Config) Keys() int { return len(c.values) }
