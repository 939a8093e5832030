package config

import "strconv"

// flatten turns nested JSON objects into dotted keys:
// {"db": {"port": 5432}} becomes "db.port" = "5432". Arrays and nulls are
// not configuration values and are skipped.
func flatten(prefix string, in map[string]any, out map[string]string) {
	for k, v := range in {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		switch t := v.(type) {
		case map[string]any:
			flatten(k, t, out)
		case string:
			out[key] = t
		case float64:
			out[key] = strconv.FormatFloat(t, 'f', -1, 64)
		case bool:
			out[key] = strconv.FormatBool(t)
		}
	}
}
