package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/heraldhq/herald/internal/broker/redisbroker"
	"github.com/heraldhq/herald/internal/config"
)

// newRedisBroker builds the Redis broker of a validated config. It
// connects in the background: a node starts while Redis is down, and
// reports itself not ready until it is reachable.
func newRedisBroker(rc config.Redis, log *slog.Logger) (*clusterBroker, error) {
	tc, err := rc.TLSConfig()
	if err != nil {
		return nil, err
	}
	b, err := redisbroker.New(context.Background(), redisbroker.Options{
		URL:            rc.URL,
		TLS:            tc,
		SentinelMaster: rc.Sentinel.Master,
		SentinelAddrs:  rc.Sentinel.Addrs,
		Prefix:         rc.Prefix,
		NodeID:         rc.NodeID,
		NodeTTL:        rc.NodeTTL,
		Refresh:        rc.RefreshInterval,
		Log:            log,
	})
	if err != nil {
		// The broker's own validation: its message may quote the URL.
		return nil, fmt.Errorf("redis %s: %s", rc.Addr(), redact(err.Error(), rc.URL))
	}
	return &clusterBroker{
		Broker: b,
		nodeID: b.NodeID(),
		state: func() (bool, uint64) {
			st := b.Stats()
			return st.Connected, st.Reconnects
		},
		failed:   b.Failed(),
		err:      b.Err,
		claiming: b.Claiming,
	}, nil
}
