package server

import (
	"log/slog"
	"net/url"
	"strings"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/metrics"
)

// clusterBroker is a broker shared by a cluster's nodes, with what it
// tells beyond the contract: the node's id and its backend connection.
type clusterBroker struct {
	broker.Broker
	nodeID string
	// state reports the connection to the backend, for the metrics.
	state metrics.RedisState
	// failed is closed when the broker stopped for good, err says why:
	// the node id is another process's. The node then shuts down.
	failed <-chan struct{}
	err    func() error
	// claiming reports that the broker waits, at start, for another
	// process's claim of the node id to expire.
	claiming func() bool
}

// newBroker returns the node's broker: Redis's in cluster mode, else the
// in-memory one. In cluster mode it logs the node id and where Redis is,
// its password masked.
func newBroker(cfg config.Config, log *slog.Logger) (broker.Broker, *clusterBroker, error) {
	if !cfg.Redis.Enabled() {
		return broker.NewMemory(0), nil, nil
	}
	cb, err := newRedisBroker(cfg.Redis, log)
	if err != nil {
		return nil, nil, err
	}
	log.Info("cluster mode: sharing state through Redis", "node_id", cb.nodeID, "redis", cfg.Redis.Addr(),
		"prefix", cfg.Redis.Prefix, "node_ttl", cfg.Redis.NodeTTL.String(), "refresh_interval", cfg.Redis.RefreshInterval.String())
	if db := cfg.Redis.Database(); db != 0 && (cfg.Redis.Prefix == "" || cfg.Redis.Prefix == config.DefaultRedisPrefix) {
		// Redis keeps keys per database but has one pub/sub space for
		// them all: a second deployment told apart by its database alone
		// keeps its own state and yet hears this one's events, presence
		// announcements and terminate_connections for apps of the same
		// id. Only the prefix separates deployments; say so to whoever
		// chose a database for it.
		log.Warn("redis pub/sub is shared by every database: a Herald deployment using another database of this Redis must have another redis.prefix (HERALD_REDIS_PREFIX), or the two exchange events",
			"database", db, "prefix", config.DefaultRedisPrefix)
	}
	return cb.Broker, cb, nil
}

// redact removes rawURL's secrets from s, an error message that may quote
// the URL or its password.
func redact(s, rawURL string) string {
	s = strings.ReplaceAll(s, rawURL, config.Redact(rawURL))
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		secret, ok := u.User.Password()
		if !ok {
			secret = u.User.Username()
		}
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "xxxxx")
		}
	}
	return s
}
