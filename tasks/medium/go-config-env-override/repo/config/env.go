package config

import "strings"

// envName is the variable that overrides key: "db.pool.max_size" is
// APP_DB_POOL_MAX_SIZE.
func envName(key string) string {
	return "APP_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// applyEnv overrides known keys with APP_* variables. Variables that do
// not name a key of the file are ignored.
func applyEnv(values map[string]string, environ []string) {
	byName := map[string]string{}
	for key := range values {
		byName[envName(key)] = key
	}
	for _, kv := range environ {
		parts := strings.Split(kv, "=")
		if len(parts) < 2 {
			continue
		}
		if key, ok := byName[parts[0]]; ok {
			values[key] = parts[1]
		}
	}
}
