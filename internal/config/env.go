package config

import (
	"slices"
	"strings"
)

// envNames are every HERALD_* variable that Load and LoadCommand read.
// TestEnvNamesAreTheOnesRead keeps the list and the code in step.
var envNames = []string{
	"HERALD_ADDR",
	"HERALD_APP_API_KEY",
	"HERALD_APP_CLIENT_EVENTS",
	"HERALD_APP_CLIENT_PUBLISH",
	"HERALD_APP_ID",
	"HERALD_APP_JWT_PUBLIC_KEY",
	"HERALD_APP_JWT_SECRET",
	"HERALD_APP_KEY",
	"HERALD_APP_PUSHER_JWT_AUTH",
	"HERALD_APP_SECRET",
	"HERALD_APP_WEBHOOK_URL",
	"HERALD_CENTRIFUGO_EXPIRED_CLOSE_DELAY",
	"HERALD_CENTRIFUGO_PING_INTERVAL",
	"HERALD_CENTRIFUGO_PONG_TIMEOUT",
	"HERALD_CENTRIFUGO_STALE_CLOSE_DELAY",
	"HERALD_CONFIG",
	"HERALD_DEBUG_ADDR",
	"HERALD_ENCRYPTION_MASTER_KEY",
	"HERALD_LOG_LEVEL",
	"HERALD_METRICS_ADDR",
	"HERALD_NODE_ID",
	"HERALD_REDIS_NODE_TTL",
	"HERALD_REDIS_PREFIX",
	"HERALD_REDIS_REFRESH_INTERVAL",
	"HERALD_REDIS_SENTINEL_ADDRS",
	"HERALD_REDIS_SENTINEL_MASTER",
	"HERALD_REDIS_TLS_CA_FILE",
	"HERALD_REDIS_TLS_CERT_FILE",
	"HERALD_REDIS_TLS_KEY_FILE",
	"HERALD_REDIS_URL",
	"HERALD_SHUTDOWN_DELAY",
	"HERALD_TRANSPORT",
	"HERALD_WEBHOOK_BATCH_WINDOW",
	"HERALD_WEBHOOK_DELAY",
	"HERALD_WEBHOOK_QUEUE_SIZE",
	"HERALD_WEBHOOK_REQUEST_TIMEOUT",
	"HERALD_WEBHOOK_RETRY_LIMIT",
}

// UnknownVar is a HERALD_* variable of the environment that no setting
// reads, with the setting's name it is probably a misspelling of, if any.
type UnknownVar struct {
	Name, Suggest string
}

// UnknownEnv returns the HERALD_* variables of environ (as os.Environ
// gives it) that Herald does not read. A misspelt HERALD_APP_SECRET would
// otherwise leave a node silently serving the public development app, so
// the command warns about each. Only names are looked at: values may be
// secrets.
func UnknownEnv(environ []string) []UnknownVar {
	var out []UnknownVar
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "HERALD_") || slices.Contains(envNames, name) {
			continue
		}
		out = append(out, UnknownVar{Name: name, Suggest: nearestEnvName(name)})
	}
	return out
}

// nearestEnvName is the known name within two edits of name, or "".
func nearestEnvName(name string) string {
	best, bestD := "", 3
	for _, k := range envNames {
		if d := editDistance(name, k, bestD); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or limit when it
// is limit or more (the names are short, so the full table is cheap).
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
